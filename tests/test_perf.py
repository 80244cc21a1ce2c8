"""bench.perf measures what it says: the plain loop repeats the harness's steps, the FLOP count is
the model's. (Its timings are not asserted: they are benchmark output, not test results.)"""
import pytest
import torch

from bench.perf.benchmarks import overhead_pair, vae_iwae_flops
from bench.perf.independent import IndependentRun, IndependentVAE
from bench.perf.runs import HarnessRun, PlainRun
from bench.planning.profiles import resolve_profile
from methods.models.vae import BernoulliVAE

CPU = torch.device("cpu")


def images(batches: int) -> torch.Tensor:
    return torch.rand(batches * 64, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def test_the_harness_records_the_minibatches_it_trains_on():
    profile = resolve_profile("quick")
    run = HarnessRun("reservoir", images(3), profile, seed=0, device=CPU)
    sizes = [run.train(experience)[0] for experience in run.experiences]
    # E = 1 pass over the incoming 64 images plus the memory (64, then 128 images)
    assert sizes == [[64], [64, 64], [64, 64, 64]]
    assert sum(map(len, sizes)) == run.strategy.clock.train_iterations


def test_the_plain_loop_takes_exactly_those_steps():
    profile = resolve_profile("quick")
    plain = PlainRun(images(2), profile, seed=0, device=CPU)
    seconds = plain.train([64, 64, 30])
    assert seconds > 0
    steps = {int(state["step"]) for state in plain.optimizer.state.values()}
    assert steps == {3} and plain.steps == 3


@pytest.mark.parametrize("method", ["ocm", "lgm"])   # the fused step, and an eager method that adds images
def test_an_overhead_pair_times_the_three_loops_on_the_same_steps(method):
    """The three loops take as many optimizer steps as the harness's strategy did, on minibatches
    of the sizes it trained on."""
    pair = overhead_pair(method, images(4), resolve_profile("smoke"), 0, CPU)
    assert pair.steps >= 4
    assert pair.steps_taken == {"harness": pair.steps, "plain": pair.steps, "independent": pair.steps}
    assert pair.ours > 0 and pair.plain > 0 and pair.independent > 0
    assert (pair.timer is not None) == (method == "ocm")   # OCM's selections are timed on their own


def test_the_independent_vae_is_the_papers_vae_with_its_own_elbo():
    """Same sizes as BernoulliVAE; with the same weights its ELBO (closed-form KL) matches the
    project's estimate (log p(x, z) - log q(z | x)) within Monte-Carlo noise."""
    torch.manual_seed(0)
    ours, independent = BernoulliVAE(mc_samples=4000), IndependentVAE(mc_samples=4000)
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in independent.parameters())
    c = ours.components[0]
    with torch.no_grad():
        pairs = [(independent.encoder[0], ours.encoder_shared), (independent.encoder[2], c.encoder_hidden),
                 (independent.decoder[0], ours.decoder_shared), (independent.decoder[2], c.decoder_hidden),
                 (independent.decoder[4], c.decoder_out)]
        for mine, theirs in pairs:
            mine.weight.copy_(theirs.weight), mine.bias.copy_(theirs.bias)
        independent.encoder[4].weight.copy_(torch.cat([c.encoder_mu.weight, c.encoder_log_sigma.weight]))
        independent.encoder[4].bias.copy_(torch.cat([c.encoder_mu.bias, c.encoder_log_sigma.bias]))
    x = torch.bernoulli(torch.rand(4, 784, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        theirs, mine = ours(x).mean().item(), independent.negative_elbo(x).item()
    assert mine == pytest.approx(theirs, rel=2e-3) and mine > 400    # an untrained VAE: ~545 nats


def test_the_independent_loop_trains():
    from streams.stream import load_stream

    digits = load_stream("mini").train_images(0, 0)
    run = IndependentRun(digits, resolve_profile("quick"), seed=0, device=CPU)
    run.train([64] * 40)
    assert run.losses[0] > 500 and run.losses[-1] < 300   # 545 nats untrained; digits learn fast


def test_the_flop_count_is_the_encoder_per_image_and_the_decoder_per_sample():
    model = BernoulliVAE()   # 784 -> 200 -> 200 -> 2 x 50; 50 -> 200 -> 200 -> 784
    encoder = 784 * 200 + 200 * 200 + 2 * 200 * 50
    decoder = 50 * 200 + 200 * 200 + 200 * 784
    assert vae_iwae_flops(model, images=3, k=10) == 2 * (3 * encoder + 3 * 10 * decoder)
