"""bench.perf measures what it says: the plain loop repeats the harness's steps, the FLOP count is
the model's. (Its timings are not asserted: they are benchmark output, not test results.)"""
import torch

from bench.perf.benchmarks import HarnessRun, PlainRun, overhead_pair, vae_iwae_flops
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
    assert steps == {3}


def test_an_overhead_pair_times_both_loops_on_the_same_steps():
    steps, ours, plain, timer = overhead_pair("ocm", images(4), resolve_profile("smoke"), 0, CPU)
    assert steps >= 4 and ours > 0 and plain > 0
    assert timer is not None   # OCM's selections are timed on their own


def test_the_flop_count_is_the_encoder_per_image_and_the_decoder_per_sample():
    model = BernoulliVAE()   # 784 -> 200 -> 200 -> 2 x 50; 50 -> 200 -> 200 -> 784
    encoder = 784 * 200 + 200 * 200 + 2 * 200 * 50
    decoder = 50 * 200 + 200 * 200 + 200 * 784
    assert vae_iwae_flops(model, images=3, k=10) == 2 * (3 * encoder + 3 * 10 * decoder)
