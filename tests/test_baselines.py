"""LGM and CURL: the mechanisms the papers define, checked with real numbers."""
import copy

import pytest
import torch
from avalanche.training import Naive

from methods.core.strategy import GenerativeStrategy
from methods.curl import CURLConfig, CURLModel, CURLPlugin
from methods.lgm import LGMPlugin
from methods.models.gaussian import gaussian_kl
from methods.models.likelihood import component_log_likelihoods, iwae_log_likelihood
from methods.models.vae import BernoulliVAE, GenerativeLoss
from streams.benchmark import online_experiences, task_benchmark


def tasks(n=128, count=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    data = [torch.rand(n, 1, 28, 28, generator=gen) * (0.2 + 0.25 * t) for t in range(count)]
    return task_benchmark(data, [d[:8].round() for d in data])


class BatchSpy(torch.nn.Module):
    """Records every training minibatch the model sees (`batches`) and its size (`sizes`)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.sizes, self.batches = model, [], []

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.model, name)

    def forward(self, x):
        self.sizes.append(len(x))
        self.batches.append(x.detach().clone())
        return self.model(x)


def test_lgm_replay_fraction_is_t_over_t_plus_1_and_the_teacher_is_frozen():
    torch.manual_seed(0)
    spy = BatchSpy(BernoulliVAE())
    plugin = LGMPlugin(seed=0)
    strategy = GenerativeStrategy(model=spy, optimizer=torch.optim.Adam(spy.parameters(), 1e-3),
                                  train_epochs=1, plugins=[plugin])
    sizes_per_task, teachers = [], []
    for t, task in enumerate(tasks().train_stream):
        spy.sizes.clear()
        strategy.train(task)
        sizes_per_task.append(list(spy.sizes))
        teachers.append({n: p.clone() for n, p in plugin.teacher.named_parameters()})
        assert all(not p.requires_grad for p in plugin.teacher.parameters())
    # 128 real images per task in minibatches of 64; t finished tasks add 64 t generated images
    assert sizes_per_task == [[64, 64], [128, 128], [192, 192]]
    assert [1 - 64 / s[0] for s in sizes_per_task] == pytest.approx([0, 1 / 2, 2 / 3])
    # a teacher never changes while the student trains; the next boundary makes a new one
    first = teachers[0]
    assert any(not torch.equal(first[n], teachers[1][n]) for n in first)


def test_lgm_consistency_is_zero_when_student_equals_teacher():
    torch.manual_seed(0)
    student = BernoulliVAE()
    plugin = LGMPlugin(seed=0)
    plugin.teacher = copy.deepcopy(student)
    x = torch.bernoulli(torch.rand(32, 784))
    assert torch.allclose(plugin.consistency(student, x), torch.zeros(32), atol=1e-5)
    with torch.no_grad():
        student.components[0].encoder_mu.bias.add_(0.5)
    # shifting every mean by 0.5: KL = sum_i 0.5^2 / (2 sigma_i^2)
    _, std = plugin.teacher.encode(x)
    expected = (0.25 / (2 * std ** 2)).sum(1)
    assert torch.allclose(plugin.consistency(student, x), expected, rtol=1e-4)


def test_gaussian_kl_matches_the_closed_form():
    kl = gaussian_kl(torch.tensor([[1.0]]), torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[1.0]]))
    assert torch.allclose(kl, torch.tensor([0.5 * (4 + 1 - 1 - torch.log(torch.tensor(4.0)))]))


def test_lgm_on_a_plain_avalanche_strategy():
    model = BernoulliVAE()
    plugin = LGMPlugin(seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, plugins=[plugin], evaluator=None)
    for task in tasks(count=2).train_stream:
        strategy.train(task)
    assert plugin.tasks_done == 2 and plugin.memory_size == 0


def curl_model(components=3, seed=0):
    torch.manual_seed(seed)
    model = CURLModel()
    for c in range(components - 1):
        model.add_component(c)
    with torch.no_grad():
        for c in range(components):
            model.prior_mu[c].normal_()
            model.heads_mu[c].bias.normal_()
    return model


def test_curl_q_y_covers_only_active_components():
    model = curl_model(components=3)
    q = model.log_q_y(model.hidden_features(torch.rand(5, 784))).exp()
    assert q.shape == (5, 3) and torch.allclose(q.sum(1), torch.ones(5))


def test_curl_new_component_copies_the_most_probable_parent():
    model = curl_model(components=3)
    x = torch.bernoulli(torch.rand(100, 784))
    with torch.no_grad():
        model.cluster_logits.bias[1] += 20.0     # component 1 explains everything
    plugin = CURLPlugin(CURLConfig(expansion_passes=0), seed=0)
    plugin.buffer = x
    new = plugin.expand(model)
    assert new == 3 and model.num_components == 4 and plugin.expansions[0]["parent"] == 1
    assert torch.equal(model.heads_mu[3].weight, model.heads_mu[1].weight)
    assert torch.equal(model.prior_mu[3], model.prior_mu[1])
    assert plugin.buffer is None and plugin.snapshot.num_components == 4


def test_curl_expansion_training_changes_only_the_new_component():
    model = curl_model(components=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plugin = CURLPlugin(CURLConfig(expansion_passes=2), seed=0)
    plugin.buffer = torch.bernoulli(torch.rand(100, 784))
    new = plugin.expand(model)
    for name, param in model.named_parameters():
        if name in before and name != "cluster_logits.weight" and name != "cluster_logits.bias":
            assert torch.equal(before[name], param), name
    assert not torch.equal(model.heads_mu[new].weight, model.heads_mu[0].weight)
    changed_rows = (model.cluster_logits.weight != before["cluster_logits.weight"]).any(1)
    assert changed_rows.nonzero().flatten().tolist() == [new]


def test_curl_expands_when_and_only_when_the_buffer_fills():
    torch.manual_seed(0)
    model = CURLModel()
    config = CURLConfig(threshold=1e9, buffer_size=100, burn_in=3, spacing=4, expansion_passes=1)
    plugin = CURLPlugin(config, seed=0)   # threshold 1e9: every real sample is poorly explained
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  plugins=[plugin])
    data = torch.rand(64 * 12, 1, 28, 28)
    history = []
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
        history.append((plugin.steps, model.num_components, plugin.memory_size))
    # steps 1-3 burn-in; step 4: 64 in the buffer; step 5: 100 (full) -> expansion; the next
    # fills at step 7 but must wait for spacing (step 9)
    assert [s for s, _, _ in history if s in (4, 5, 7, 8, 9)] == [4, 5, 7, 8, 9]
    components = {s: c for s, c, _ in history}
    buffer = {s: m for s, _, m in history}
    assert buffer[4] == 64 and components[4] == 1
    assert components[5] == 2 and buffer[5] == 0
    assert buffer[7] == 100 and components[8] == 2 and components[9] == 3
    assert [e["step"] for e in plugin.expansions] == [5, 9, 13][:len(plugin.expansions)]


def test_curl_likelihood_is_the_mixture_over_y_and_exact_when_the_decoder_ignores_z():
    model = curl_model(components=3)
    with torch.no_grad():
        model.decoder_out.weight.zero_()
        for c in range(3):   # q(z|x, y) = p(z|y) for every y: the importance weights are exact
            model.heads_mu[c].weight.zero_()
            model.heads_mu[c].bias.copy_(model.prior_mu[c])
            model.heads_log_sigma[c].weight.zero_()
            model.heads_log_sigma[c].bias.copy_(model.prior_log_sigma[c])
    x = torch.bernoulli(torch.rand(20, 784))
    exact = -torch.nn.functional.binary_cross_entropy_with_logits(
        model.decoder_out.bias.expand_as(x), x, reduction="none").sum(1)
    # p(x|z) does not depend on z, so p(x|y) = p(x|z) = p(x) for every y, estimated exactly
    ll = iwae_log_likelihood(model, x, 50, torch.Generator().manual_seed(0))
    assert torch.allclose(ll, exact, atol=1e-3)
    per_component = component_log_likelihoods(model, x, 50, torch.Generator().manual_seed(0))
    assert per_component.shape == (3, 20)


def test_curl_on_a_plain_avalanche_strategy():
    model = CURLModel()
    plugin = CURLPlugin(CURLConfig(threshold=1e9, burn_in=1, spacing=1, expansion_passes=1), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, plugins=[plugin], evaluator=None)
    data = torch.rand(64 * 5, 1, 28, 28)
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
    assert model.num_components >= 2 and plugin.snapshot is not None
