"""CN-DPM: the wake phase's routing, counts and minimum-usage rule, the sleep phase, the
count-weighted mixture, checked with real numbers. Experts with known likelihoods (`known`: a
decoder that ignores z and q(z|x) = p(z)) make every NLL and importance weight exact."""
import json
import math
import types

import pytest
import torch
import torch.nn.functional as F
from avalanche.training import Naive
from scipy.stats import chisquare

# importing methods.cndpm registers 'cndpm' (also before methods/__init__.py imports it)
from methods.cndpm import CNDPMConfig, CNDPMModel, CNDPMPlugin, expert_nll, seeded_vae
from methods.core.minibatches import TensorMinibatches
from methods.core.strategy import GenerativeStrategy
from methods.models.likelihood import iwae_log_likelihood
from methods.models.vae import GenerativeLoss
from streams.benchmark import online_experiences, task_benchmark

D = 784
HALF = torch.cat([torch.ones(D // 2), torch.zeros(D // 2)])   # a binary image: top half on


def known(vae, logits):
    """Make `vae` exact: q(z|x) = N(0, I) (up to the 1e-6 std offset), p(x|z) = Bernoulli(sigmoid(logits))
    whatever z, so its NLL and every importance weight are -log p(x) = BCE(logits, x)."""
    with torch.no_grad():
        comp = vae.components[0]
        for layer in (comp.encoder_mu, comp.encoder_log_sigma):
            layer.weight.zero_()
            layer.bias.zero_()
        comp.decoder_out.weight.zero_()
        comp.decoder_out.bias.copy_(logits)
    return vae


def bce(logits, x):
    """-log prod_i Bernoulli(x_i; sigmoid(logits_i)) per image: [B] (float64)."""
    return F.binary_cross_entropy_with_logits(logits.double().expand(len(x), -1), x.double(),
                                              reduction="none").sum(1)


def known_model(expert_logits=(), counts=(), placeholder_logits=None):
    """A model whose placeholder and experts all have known likelihoods."""
    model = CNDPMModel()
    known(model.placeholder, torch.zeros(D) if placeholder_logits is None else placeholder_logits)
    for logits, count in zip(expert_logits, counts):
        known(model.add_expert(count, seed=0), logits)
    return model


def online(data):
    return online_experiences(task_benchmark([data], [data[:4]]).train_stream[0])


def parameters(module):
    return [p.detach().clone() for p in module.parameters()]


def same(module, before):
    return all(torch.equal(a, b) for a, b in zip(module.parameters(), before))


def test_a_sample_no_expert_explains_goes_to_the_stm_and_one_an_expert_explains_does_not():
    logits = 8 * (2 * HALF - 1)                  # expert 1 explains HALF, not its complement
    model = known_model([logits], [100.0])
    x = torch.stack([HALF, 1 - HALF])             # 0/1 images: every binarization is the image
    nll0, nll1 = bce(torch.zeros(D), HALF[None]).item(), bce(logits, HALF[None]).item()
    assert nll0 == pytest.approx(D * math.log(2)) and nll1 == pytest.approx(D * F.softplus(torch.tensor(-8.)).item())
    plugin = CNDPMPlugin(CNDPMConfig(log_alpha=400.0, wake="harness"), seed=0)
    plugin.model = model
    trained = plugin.training_images(x)
    # HALF: 0.26 - log 100 < 543.4 - 400; its complement: 6272 - log 100 > 543.4 - 400
    assert torch.equal(trained, x[:1]) and torch.equal(plugin.stm, x[1:])
    # as the code's `to_expert`: every sample's responsibilities count, the STM-bound one's too
    assert model.counts.tolist() == [102.0]
    # the STM takes HALF exactly when NLL_0 - log alpha < NLL_1 - log N_1
    boundary = nll0 - nll1 + math.log(100)
    for log_alpha, to_stm in ((boundary - 0.05, False), (boundary + 0.05, True)):
        plugin = CNDPMPlugin(CNDPMConfig(log_alpha=log_alpha), seed=0)
        plugin.route(known_model([logits], [100.0]), x[:1])
        assert plugin.memory_size == int(to_stm), log_alpha


def test_before_any_expert_everything_goes_to_the_stm_and_the_model_is_the_placeholder():
    model = known_model()
    plugin = CNDPMPlugin(seed=0)
    plugin.model = model
    x = torch.rand(10, D)
    assert len(plugin.training_images(x)) == 0 and plugin.memory_size == 10
    assert model.num_components == 1 and model.log_mixture_weights().tolist() == [0.0]
    binary = torch.bernoulli(x)
    assert torch.allclose(iwae_log_likelihood(model, binary, 5).double(), -bce(torch.zeros(D), binary), atol=1e-3)


def test_the_sleep_fires_exactly_when_the_stm_fills_and_counts_add_responsibilities_once():
    torch.manual_seed(0)
    model = CNDPMModel(placeholder_seed=0)
    placeholder = parameters(model.placeholder)
    # log_alpha -1e4: once an expert exists no sample goes to the STM
    plugin = CNDPMPlugin(CNDPMConfig(log_alpha=-1e4, stm_capacity=128, sleep_steps=3, wake="harness"), seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  train_epochs=2, plugins=[plugin])
    history = []
    for experience in online(torch.rand(64 * 5, 1, 28, 28)):
        strategy.train(experience)
        history.append((model.num_experts, plugin.memory_size, strategy.clock.train_iterations))
    # batch 1: STM 64; batch 2: STM 128 = capacity -> sleep after the batch (no wake step: no
    # expert yet); batches 3-5 go to the expert: 2 passes each, one minibatch of 64
    assert history == [(0, 64, 0), (1, 0, 0), (1, 0, 2), (1, 0, 4), (1, 0, 6)]
    assert plugin.timeline == [{"step": 0, "position": 128, "experts": 1, "components": 1, "stm": 128,
                                "buffer": 128, "expanded": True}]
    # N = |STM| + 1 at the sleep (the code's prior entry starts at 1), then r = 1 per incoming
    # sample, once (not once per pass)
    assert model.counts.tolist() == [129.0 + 3 * 64]
    assert plugin.memory_peak == 128 and plugin.extra_steps == 3 and plugin.extra_images == 3 * 50
    assert same(model.placeholder, placeholder)
    assert plugin.extra_stats() == {"experts": 1, "counts": [321.0], "sleeps": 1, "stm_size": 0,
                                    "wake_steps": 0}


def test_the_sleep_trains_one_new_expert_on_the_stm_alone():
    model = known_model([8 * (2 * HALF - 1)], [50.0])
    placeholder, expert1 = parameters(model.placeholder), parameters(model.experts[0])
    plugin = CNDPMPlugin(CNDPMConfig(sleep_steps=40, sleep_lr=3e-3), seed=0)
    pattern = 1 - HALF
    plugin.stm = pattern.expand(120, D).clone()   # 0/1 grey levels: the STM's binarizations are it
    new = plugin.sleep(model)
    assert model.num_experts == 2 and model.experts[1] is new
    assert model.counts.tolist() == [50.0, 121.0] and plugin.memory_size == 0
    assert same(model.placeholder, placeholder) and same(model.experts[0], expert1)
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        learnt = model.nll_matrix(torch.stack([pattern, HALF]))[2]
        untrained = expert_nll(seeded_vae(0), pattern[None])
    # a random VAE gives ~545 nats; 40 steps on the STM's image bring it far lower, not its opposite
    assert untrained.item() > 500 and learnt[0] < 250 and learnt[1] > 600
    assert plugin.extra_steps == 40 and plugin.extra_images == 40 * 50
    assert model.log_mixture_weights().exp().tolist() == pytest.approx([50 / 171, 121 / 171])


def test_counts_grow_by_the_responsibilities():
    a, b = 0.005 * (2 * HALF - 1), torch.zeros(D)   # NLLs 2 nats apart: soft responsibilities
    model = known_model([a, b], [30.0, 70.0], placeholder_logits=torch.full((D,), -5.0))
    plugin = CNDPMPlugin(seed=0)
    plugin.model = model
    x = torch.stack([HALF, 1 - HALF, HALF])
    keep = plugin.route(model, x)
    assert keep.all()                            # the placeholder (all pixels off) explains none
    nll = torch.stack([bce(a, x), bce(b, x)])    # [2, 3]
    r = torch.softmax(-(nll - torch.tensor([30.0, 70.0], dtype=torch.float64).log()[:, None]), 0)
    assert model.counts.tolist() == pytest.approx((torch.tensor([30.0, 70.0]) + r.sum(1)).tolist(), rel=1e-5)
    # HALF: sigmoid(1.96 - log(70/30)) = 0.75 to a; its complement: sigmoid(-1.96 - 0.85) = 0.06
    assert r[0].tolist() == pytest.approx([0.753, 0.057, 0.753], abs=1e-3)


def test_an_expert_with_usage_at_most_min_usage_gets_no_gradient():
    def model(n2):   # identical experts: r_2 = N_2 / (N_1 + N_2) for every image
        return known_model([torch.zeros(D), torch.zeros(D)], [100.0 - n2, n2],
                           placeholder_logits=torch.full((D,), -50.0))

    x = torch.rand(4, D)
    for n2, updated in ((2.0, False), (3.0, True)):   # usage of 4 images: 0.08 <= 0.1 < 0.12
        m, plugin = model(n2), CNDPMPlugin(seed=0)
        assert plugin.route(m, x).all() and m.update_mask == [True, updated]
        assert m.counts.tolist() == pytest.approx([100.0 - n2 + 4 * (1 - n2 / 100), n2 + 4 * n2 / 100], rel=1e-5)
        # the wake loss: sum over the experts allowed to update of r_k NLL_k (here NLL_1 = NLL_2)
        binary = torch.bernoulli(x)
        nll = bce(torch.zeros(D), binary)
        r = m.counts / m.counts.sum()
        expected = r[0] * nll + (r[1] * nll if updated else 0)
        assert torch.allclose(m(binary).double(), expected, rtol=1e-5)
        # one wake step: the expert under the minimum usage keeps its parameters exactly
        m = model(n2)
        experts = [parameters(e) for e in m.experts]
        strategy = GenerativeStrategy(model=m, optimizer=torch.optim.Adam(m.parameters(), 1e-3),
                                      plugins=[CNDPMPlugin(CNDPMConfig(wake="harness"), seed=0)])
        strategy.train(next(iter(online(x.view(4, 1, 28, 28)))))
        assert strategy.clock.train_iterations == 1 and m.update_mask == [True, updated]
        assert not same(m.experts[0], experts[0])
        assert same(m.experts[1], experts[1]) is not updated


def test_sampling_picks_experts_in_proportion_to_their_counts():
    blocks = [torch.full((D,), -20.0) for _ in range(3)]
    for k, logits in enumerate(blocks):
        logits[k * 10:(k + 1) * 10] = 20.0        # expert k draws pixels 10k..10k+9 on
    model = known_model(blocks, [10.0, 60.0, 30.0])
    samples = model.sample(6000, torch.Generator().manual_seed(1))
    which = samples[:, :30].reshape(-1, 3, 10).mean(2).argmax(1)
    assert ((samples[:, :30] > 0.99).sum(1) == 10).all()
    assert chisquare(torch.bincount(which, minlength=3).numpy(), [600, 3600, 1800]).pvalue > 1e-3


def test_the_likelihood_is_the_count_weighted_mixture_and_reconstruct_uses_the_best_expert():
    a, b = 2 * (2 * HALF - 1), -2 * (2 * HALF - 1)
    model = known_model([a, b], [25.0, 75.0])
    x = torch.bernoulli(torch.rand(6, D, generator=torch.Generator().manual_seed(0)))
    x[0], x[1] = HALF, 1 - HALF
    ll = iwae_log_likelihood(model, x, 4, torch.Generator().manual_seed(0)).double()
    exact = torch.logsumexp(torch.stack([math.log(0.25) - bce(a, x), math.log(0.75) - bce(b, x)]), 0)
    assert torch.allclose(ll, exact, atol=1e-3)
    recon = model.reconstruct(x[:2])
    assert torch.allclose(recon[0], torch.sigmoid(a)) and torch.allclose(recon[1], torch.sigmoid(b))


def test_no_images_make_no_minibatch():
    for num_batches in (None, 3):
        generator = torch.Generator().manual_seed(0)
        batches = TensorMinibatches(torch.zeros(0, D), 64, generator, num_batches=num_batches)
        assert list(batches) == [] and len(batches) == 0
        assert torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())
    # non-empty sets draw as before: a permutation, then the binarization, from the generator
    images = torch.rand(100, D)
    x = next(iter(TensorMinibatches(images, 64, torch.Generator().manual_seed(0))))[0]
    reference = torch.Generator().manual_seed(0)
    order = torch.randperm(100, generator=reference)
    assert torch.equal(x, torch.bernoulli(images[order[:64]], generator=reference))


def test_cndpm_on_a_plain_avalanche_strategy():
    torch.manual_seed(0)
    model = CNDPMPlugin(seed=0).build_model(types.SimpleNamespace(mc_samples=1))
    plugin = CNDPMPlugin(CNDPMConfig(log_alpha=-1e4, stm_capacity=100, sleep_steps=2, wake="harness"), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, plugins=[plugin], evaluator=None)
    after_sleep = None
    for experience in online(torch.rand(64 * 5, 1, 28, 28)):
        strategy.train(experience)
        if after_sleep is None and model.num_experts:
            after_sleep = parameters(model.experts[0])
    assert plugin.model is model and model.num_experts == 1 and plugin.sleeps == 1
    assert strategy.clock.train_iterations == 3      # batches 3-5, one wake step each
    assert not same(model.experts[0], after_sleep)   # the main optimizer took the new expert in
    assert model.counts.tolist() == [129.0 + 3 * 64]


def test_cndpm_runs_through_the_harness(tmp_path):
    from bench.run import main

    code = main(["--methods", "cndpm", "--streams", "mini", "--seeds", "0", "--profile", "smoke",
                 "--out", str(tmp_path), "--no-progress", "--workers", "1",
                 "--set", "cndpm.stm_capacity=256", "--set", "cndpm.sleep_steps=100"])
    assert code == 0
    [record] = [json.loads(p.read_text()) for p in (tmp_path / "records").glob("*.json")]
    assert record["status"] == "done" and record["sleeps"] >= 2 and math.isfinite(record["nll"])
    assert record["experts"] == record["components"] == len(record["counts"]) == record["sleeps"]
    assert len(record["timeline"]) == record["sleeps"] and record["memory_peak"] >= 256
    # the code's accounting: each sleep adds |STM| + 1, and every sample after the first expert
    # exists adds its responsibilities (summing to 1), STM-bound samples included
    after_first = record["stream_length"] - record["timeline"][0]["position"]
    expected = sum(e["stm"] + 1 for e in record["timeline"]) + after_first
    assert sum(record["counts"]) == pytest.approx(expected, rel=1e-5)
    assert record["wake_steps"] > 0 and record["wake_steps"] <= after_first / 64
    assert record["gradient_steps"] >= 100 * record["sleeps"]


def slept_expert(config: CNDPMConfig):
    """A model with one expert that slept 30 steps on HALF, its plugin, and HALF batches to route."""
    torch.manual_seed(0)
    model = CNDPMModel(placeholder_seed=0)
    plugin = CNDPMPlugin(config, seed=0)
    plugin.model = model
    plugin.stm = HALF.expand(100, D).clone().view(100, 1, 28, 28)
    plugin.sleep(model)
    return model, plugin, HALF.expand(64, D).clone().view(64, 1, 28, 28)


def test_the_authors_wake_step_moves_an_expert_by_what_its_learning_rate_allows():
    """wake="authors": after its sleep an expert's own Adam runs at 3e-4 * 0.003 = 9e-7 (the
    code's MultiStepLR), one step per incoming batch: the expert barely moves. The earlier
    default trained it at the profile's rate (1e-3 here) through the strategy."""
    model, plugin, batch = slept_expert(CNDPMConfig(sleep_steps=30, log_alpha=-1e4))
    assert plugin.expert_optimizers[0].param_groups[0]["lr"] == pytest.approx(9e-7)
    before = parameters(model.experts[0])
    assert len(plugin.training_images(batch)) == 0 and plugin.wake_steps == 1
    moved = max((a - b).abs().max().item() for a, b in zip(model.experts[0].parameters(), before))
    assert 0 < moved <= 5 * 9e-7
    assert all(p.grad is None for p in model.parameters())

    model, plugin, batch = slept_expert(CNDPMConfig(sleep_steps=30, log_alpha=-1e4, wake="frozen"))
    before = parameters(model.experts[0])
    assert len(plugin.training_images(batch)) == 0 and plugin.wake_steps == 0 and same(model.experts[0], before)

    model, plugin, batch = slept_expert(CNDPMConfig(sleep_steps=30, log_alpha=-1e4, wake="harness"))
    before = parameters(model.experts[0])
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  plugins=[plugin])
    strategy.train(next(iter(online(batch))))
    moved = max((a - b).abs().max().item() for a, b in zip(model.experts[0].parameters(), before))
    assert moved > 100 * 9e-7


def test_the_stm_keeps_the_routing_binarization_and_the_sleep_does_not_redraw_it():
    plugin = CNDPMPlugin(seed=0)
    plugin.model = known_model()
    grey = torch.full((20, D), 0.5)
    plugin.training_images(grey)
    assert ((plugin.stm == 0) | (plugin.stm == 1)).all()
    reference = torch.Generator().manual_seed(0)
    assert torch.equal(plugin.stm, torch.bernoulli(grey, generator=reference))


def test_no_expert_beyond_the_cap_and_nothing_goes_to_the_stm_at_it():
    torch.manual_seed(0)
    model = CNDPMModel(placeholder_seed=0)
    plugin = CNDPMPlugin(CNDPMConfig(log_alpha=1e4, stm_capacity=64, sleep_steps=1, max_experts=2), seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                                  plugins=[plugin])
    # log_alpha 1e4: without a cap every sample would go to the STM and every batch make an expert
    for experience in online(torch.rand(64 * 5, 1, 28, 28)):
        strategy.train(experience)
    assert model.num_experts == 2 and plugin.sleeps == 2 and plugin.memory_size == 0
    # two sleeps of |STM| + 1; batch 2 went to the STM but counted for expert 1 too; batches 3-5
    assert sum(model.counts.tolist()) == pytest.approx(2 * 65 + 4 * 64, rel=1e-6)
