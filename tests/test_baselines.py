"""LGM and CURL: the mechanisms the papers define, checked with real numbers."""
import copy

import pytest
import torch
from avalanche.training import Naive
from scipy.stats import chisquare

from methods.core.strategy import GenerativeStrategy
from methods.curl import CURLConfig, CURLModel, CURLPlugin
from methods.lgm import LGMConfig, LGMPlugin, batch_split
from methods.models.contract import draw_components
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


def lgm_batches(config: LGMConfig):
    """Train LGM over three tasks of 128 images; per task, every minibatch the model saw and the
    teachers' parameters after each task."""
    torch.manual_seed(0)
    spy = BatchSpy(BernoulliVAE())
    plugin = LGMPlugin(config, seed=0)
    strategy = GenerativeStrategy(model=spy, optimizer=torch.optim.Adam(spy.parameters(), 1e-3),
                                  train_epochs=1, plugins=[plugin])
    batches, teachers = [], []
    for task in tasks().train_stream:
        spy.batches.clear()
        strategy.train(task)
        batches.append(list(spy.batches))
        teachers.append({n: p.clone() for n, p in plugin.teacher.named_parameters()})
        assert all(not p.requires_grad for p in plugin.teacher.parameters())
    return plugin, batches, teachers


def test_lgm_splits_each_batch_as_its_authors_do_and_the_teacher_is_frozen():
    plugin, batches, teachers = lgm_batches(LGMConfig())
    # a constant batch of 64: after t tasks int(64 t/(t+1)) teacher samples, the rest real
    assert [[len(b) for b in task] for task in batches] == [[64, 64]] * 3
    for t, task in enumerate(batches):
        real, teacher = batch_split(64, t)
        assert (real, teacher) == [(64, 0), (32, 32), (22, 42)][t]
        for batch in task:
            is_binary = ((batch == 0) | (batch == 1)).flatten(1).all(1)
            # the real part is freshly binarized data; the teacher's part its decoder's means
            assert is_binary[:real].all() and not is_binary[real:].any()
    assert batch_split(64, 9) == (7, 57) and batch_split(1, 3) == (1, 0)
    # a teacher never changes while the student trains; the next boundary makes a new one
    first = teachers[0]
    assert any(not torch.equal(first[n], teachers[1][n]) for n in first)


def test_lgm_append_keeps_every_real_image_and_adds_binarized_samples():
    _, batches, _ = lgm_batches(LGMConfig(mix="append"))
    # 128 real images per task in minibatches of 64; t finished tasks add 64 t generated images
    assert [[len(b) for b in task] for task in batches] == [[64, 64], [128, 128], [192, 192]]
    assert all(((b == 0) | (b == 1)).all() for task in batches for b in task)
    with pytest.raises(ValueError, match="mix must be one of"):
        LGMConfig(mix="half")


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
    plugin = CURLPlugin(CURLConfig(expansion_passes=0, replay_refresh="expansion", burn_in=0, spacing=0), seed=0)
    plugin.buffer = x
    new = plugin.expand(model)
    assert new == 3 and model.num_components == 4 and plugin.expansions[0]["parent"] == 1
    assert torch.equal(model.heads_mu[3].weight, model.heads_mu[1].weight)
    assert torch.equal(model.prior_mu[3], model.prior_mu[1])
    # the 'dynamic' snapshot is taken before the new component exists (training.py:1048-1059)
    assert plugin.buffer is None and plugin.snapshot.num_components == 3


def test_curl_expansion_trains_the_new_component_and_the_whole_logit_layer_on_batches_of_100():
    """The authors' expansion step: the buffer cut to whole batches of 100 (the latest kept), the
    ELBO with y = new; the q(y|x) logit layer trains in full (every active row moves, the earlier
    rule moved only the new one), the new head and prior train, everything else stays."""
    model = curl_model(components=2)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    plugin = CURLPlugin(CURLConfig(expansion_passes=2, burn_in=0, spacing=0), seed=0)
    buffer = torch.bernoulli(torch.rand(150, 784))
    plugin.buffer = buffer
    sizes = []
    original = model.component_elbo
    model.component_elbo = lambda x, h, c: (sizes.append(len(x)), original(x, h, c))[1]
    new = plugin.expand(model)
    assert sizes == [100, 100] and plugin.extra_steps == 2 and plugin.timeline[0]["buffer"] == 100
    for name, param in model.named_parameters():
        if name in before and not name.startswith("cluster_logits"):
            assert torch.equal(before[name], param), name
    assert not torch.equal(model.heads_mu[new].weight, model.heads_mu[0].weight)
    changed_rows = (model.cluster_logits.weight != before["cluster_logits.weight"]).any(1)
    assert changed_rows.nonzero().flatten().tolist() == [0, 1, new]   # inactive rows get no gradient


def test_curl_expands_when_the_buffer_fills_and_collects_nothing_while_it_waits():
    torch.manual_seed(0)
    model = CURLModel()
    config = CURLConfig(threshold=1e9, buffer_size=100, burn_in=3 * 64, spacing=4 * 64, expansion_passes=1,
                        replay_refresh="expansion", replay_per_batch=0)
    plugin = CURLPlugin(config, seed=0)   # threshold 1e9: every real sample is poorly explained
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  plugins=[plugin])
    data = torch.rand(64 * 14, 1, 28, 28)
    history = {}
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
        history[plugin.steps] = (model.num_components, plugin.memory_size)
    # the waits count incoming images learned before a batch: batches 1-3 burn-in (nothing
    # collected); batch 4 is still within `spacing` of position 0; batch 5: 64 in the buffer;
    # batch 6: 128 >= 100 (cut to the latest 100), expansion at position 384; batches 7-10 wait
    # (nothing collected); batch 11: 64; batch 12: expansion
    assert [history[s] for s in (3, 4, 5, 6)] == [(1, 0), (1, 0), (1, 64), (2, 0)]
    assert all(history[s] == (2, 0) for s in (7, 8, 9, 10))
    assert history[11] == (2, 64) and history[12] == (3, 0)
    assert [e["step"] for e in plugin.expansions] == [6, 12]
    assert [(e["position"], e["eligible_from"]) for e in plugin.timeline] == [(384, 256), (768, 640)]
    # the new component trained `expansion_passes` (1) pass over the buffer: one minibatch of 100
    assert plugin.extra_steps == 2 and plugin.extra_images == 200
    assert plugin.snapshots == 2   # "expansion" mode: a snapshot at each expansion


def test_curl_replays_components_in_proportion_to_their_use():
    model = curl_model(components=3)
    plugin = CURLPlugin(CURLConfig(), seed=0)
    plugin.usage = torch.tensor([6.0, 3.0, 1.0] + [0.0] * 27, dtype=torch.float64)
    plugin.take_snapshot(model)
    assert torch.allclose(plugin.replay_log_weights.exp(), torch.tensor([0.6, 0.3, 0.1]))
    which = draw_components(plugin.replay_log_weights, 5000, torch.Generator().manual_seed(0))
    counts = torch.bincount(which, minlength=3).numpy()
    assert chisquare(counts, [3000, 1500, 500]).pvalue > 0.001
    uniform = CURLPlugin(CURLConfig(replay_components="uniform"), seed=0)
    uniform.usage = plugin.usage
    uniform.take_snapshot(model)
    assert uniform.replay_log_weights is None     # the model's own uniform weights


def test_curl_counts_use_from_the_real_images_and_refreshes_the_snapshot_on_its_period():
    torch.manual_seed(0)
    model = CURLModel()
    plugin = CURLPlugin(CURLConfig(burn_in=10 ** 6, spacing=0, refresh_images=128, replay_per_batch=16,
                                   replay_mix="join"), seed=0)
    spy = BatchSpy(model)
    strategy = GenerativeStrategy(model=spy, optimizer=torch.optim.Adam(spy.parameters(), 1e-3),
                                  plugins=[plugin])
    data = torch.rand(64 * 5, 1, 28, 28)
    snapshots = []
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
        snapshots.append((plugin.snapshots, plugin.snapshot))
    # a snapshot after 128 and 256 images; replay starts after the first one
    assert [n for n, _ in snapshots] == [0, 1, 1, 2, 2]
    assert snapshots[1][1] is snapshots[2][1] and snapshots[3][1] is not snapshots[2][1]
    assert spy.sizes == [64, 64, 80, 80, 80]
    # one component: its use is the number of real images trained on
    assert plugin.usage[0].item() == pytest.approx(64 * 5) and plugin.usage[1:].sum() == 0
    with pytest.raises(ValueError, match="replay_refresh must be one of"):
        CURLConfig(replay_refresh="sometimes")


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
    plugin = CURLPlugin(CURLConfig(threshold=1e9, burn_in=1, spacing=1, expansion_passes=1,
                                   refresh_images=128), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, plugins=[plugin], evaluator=None)
    data = torch.rand(64 * 5, 1, 28, 28)
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
    assert model.num_components >= 2 and plugin.snapshot is not None


def test_curl_replays_a_whole_thresholded_batch_after_each_real_step():
    """The authors' replay: every second batch is generated (gen_every_n = 2), made of decoder
    means thresholded at 0.5; the earlier rule joined Bernoulli draws to the real minibatch."""
    torch.manual_seed(0)
    model = CURLModel()
    plugin = CURLPlugin(CURLConfig(burn_in=10 ** 6, spacing=0, refresh_images=128, replay_per_batch=16), seed=0)
    spy = BatchSpy(model)
    strategy = GenerativeStrategy(model=spy, optimizer=torch.optim.Adam(spy.parameters(), 1e-3),
                                  plugins=[plugin])
    data = torch.rand(64 * 4, 1, 28, 28)
    for experience in online_experiences(task_benchmark([data], [data[:4]]).train_stream[0]):
        strategy.train(experience)
    # a snapshot after 128 images: from the third real step on, each is followed by a replay step
    assert spy.sizes == [64, 64, 64, 16, 64, 16]
    replayed = [b for b in spy.batches if len(b) == 16]
    assert all(((b == 0) | (b == 1)).all() for b in replayed)
    assert plugin.extra_steps == 2 and plugin.extra_images == 32 and strategy.clock.train_iterations == 4
    # the replayed pixels are the snapshot's decoder means cut at 0.5
    generator = torch.Generator().manual_seed(5)
    plugin.generator = generator
    state = generator.get_state()
    batch = plugin.replay_batch()
    generator.set_state(state)
    means = plugin.snapshot.sample(16, generator, plugin.replay_log_weights)
    assert torch.equal(batch, (means > 0.5).float())


def adam_steps_per_task(config: LGMConfig) -> list[list[int]]:
    """Adam's step count after each training step of LGM over three tasks of two minibatches."""
    from avalanche.core import SupervisedPlugin

    class Spy(SupervisedPlugin):
        def after_update(self, strategy, **kwargs):
            counts[-1].append(int(next(iter(strategy.optimizer.state.values()))["step"]))

    torch.manual_seed(0)
    model = BernoulliVAE()
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  train_epochs=1, plugins=[LGMPlugin(config, seed=0), Spy()])
    counts = []
    for task in tasks().train_stream:
        counts.append([])
        strategy.train(task)
    return counts


def test_lgm_starts_each_new_student_with_a_fresh_adam_state():
    """The authors build a new optimizer after every fork (main.py:470-475): Adam's moments and
    step count start again at each task boundary (one Adam throughout was the earlier rule)."""
    assert adam_steps_per_task(LGMConfig()) == [[1, 2], [1, 2], [1, 2]]
    assert adam_steps_per_task(LGMConfig(fresh_optimizer=False)) == [[1, 2], [3, 4], [5, 6]]
