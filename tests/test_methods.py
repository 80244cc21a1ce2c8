"""Method plugins: reservoir uniformity, memories, plain-Avalanche compatibility, NaN handling."""
from pathlib import Path

import numpy as np
import pytest
import torch
from avalanche.training import Naive
from scipy.stats import chisquare

from methods import METHODS
from methods.core import experience_images
from methods.core.strategy import GenerativeStrategy, NonFiniteLossError
from methods.joint import JointPlugin
from methods.models.vae import BernoulliVAE, GenerativeLoss
from methods.reservoir import ReservoirConfig, ReservoirPlugin
from streams.benchmark import online_experiences, task_benchmark


def feed(plugin, stream, batch=64):
    for start in range(0, len(stream), batch):
        plugin.update_memory(stream[start:start + batch])


def test_reservoir_keeps_a_uniform_sample_of_the_stream():
    n, budget, runs, bins = 2000, 100, 300, 20
    stream = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    counts = np.zeros(bins)
    for seed in range(runs):
        plugin = ReservoirPlugin(ReservoirConfig(budget=budget), seed=seed)
        feed(plugin, stream)
        kept = plugin.replay_images().flatten().long()
        assert plugin.memory_size == budget and kept.unique().numel() == budget
        counts += np.bincount(kept.numpy() * bins // n, minlength=bins)
    # each stream position is kept with probability budget / n, whatever its place in the stream
    assert counts.sum() == runs * budget
    assert chisquare(counts).pvalue > 1e-3, counts
    # a recency-biased memory would put far more in the last bin than the first
    assert abs(counts[-1] - counts[0]) < 0.25 * counts.mean()


def test_reservoir_fills_before_it_replaces():
    plugin = ReservoirPlugin(ReservoirConfig(budget=100), seed=0)
    feed(plugin, torch.arange(90.0).unsqueeze(1))
    assert plugin.memory_size == 90
    assert torch.equal(plugin.replay_images().flatten(), torch.arange(90.0))


def test_registry_lists_every_method_module_and_boundary_needs():
    """Every module in methods/ registers its methods when imported, as methods/catalog.py
    declares them (references first); a module that forgot its decorator, or a registry entry
    without a module, fails here."""
    modules = {p.stem for p in (Path(__file__).parents[1] / "methods").glob("*.py")} - {"__init__", "catalog"}
    registered = {spec.plugin_class.__module__ for spec in METHODS.values()}
    assert {m.removeprefix("methods.") for m in registered if m.startswith("methods.")} == modules
    assert list(METHODS)[:2] == ["finetune", "first-k"]
    assert all(spec.config_class is spec.plugin_class.config_class for spec in METHODS.values())
    boundaries = {name for name, spec in METHODS.items() if spec.needs_task_boundaries}
    # OCM, CURL, CN-DPM, A-GEM, MIR and the task-free DGR need no boundaries; the regularizers, LwF and
    # DGR consolidate at them
    assert boundaries == {"joint", "lgm", "limix", "ewc", "si", "mas", "lwf", "dgr"}


def small_benchmark(n=256, tasks=2):
    gen = torch.Generator().manual_seed(0)
    data = [torch.rand(n, 1, 28, 28, generator=gen) * (0.2 + 0.3 * t) for t in range(tasks)]
    test = [torch.bernoulli(d[:32], generator=gen) for d in data]
    return task_benchmark(data, test), test


def test_reservoir_on_a_plain_avalanche_strategy_trains_and_fills_its_memory():
    torch.manual_seed(0)
    model = BernoulliVAE()
    before = [p.detach().clone() for p in model.parameters()]
    plugin = ReservoirPlugin(ReservoirConfig(budget=150), seed=0)
    strategy = Naive(model=model, optimizer=torch.optim.Adam(model.parameters(), 1e-3),
                     criterion=GenerativeLoss(), train_mb_size=64, train_epochs=1,
                     plugins=[plugin], evaluator=None)
    benchmark, test = small_benchmark()
    test_x = test[1]
    loss_before = model(test_x).mean().item()
    for task in benchmark.train_stream:
        for experience in online_experiences(task):
            strategy.train(experience)
    assert plugin.memory_size == 150 and plugin.seen == 512
    # one step per batch of the first experience, then steps over batch + memory
    assert strategy.clock.train_iterations == 1 + 2 + 3 + 4 + 4 * 4
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert model(test_x).mean().item() < loss_before - 50  # nats per image


def test_joint_sees_all_data_so_far_at_each_boundary():
    model = BernoulliVAE()
    plugin = JointPlugin(seed=0)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()),
                                  train_epochs=2, plugins=[plugin])
    benchmark, _ = small_benchmark(n=128, tasks=3)
    for t, task in enumerate(benchmark.train_stream):
        strategy.train(task)
        assert plugin.memory_size == 128 * (t + 1)
    # 2 epochs over 128, 256, 384 images in minibatches of 64
    assert strategy.clock.train_iterations == 2 * (2 + 4 + 6)


def test_nan_loss_stops_training_with_a_clear_error():
    model = BernoulliVAE()
    with torch.no_grad():
        model.components[0].decoder_out.bias.fill_(float("nan"))
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters()),
                                  plugins=[ReservoirPlugin(seed=0)])
    with pytest.raises(NonFiniteLossError, match="reservoir: the training loss became NaN"):
        strategy.train(next(iter(online_experiences(small_benchmark()[0].train_stream[0]))))


class EventRecorder(ReservoirPlugin):
    """A method plugin that records every training callback Avalanche defines, in call order."""

    def __init__(self):
        super().__init__(ReservoirConfig(budget=100), seed=0)
        self.events = []


def _recording(event):
    def callback(self, strategy, **kwargs):
        self.events.append(event)
        parent = getattr(ReservoirPlugin, event, None)
        if parent is not None:
            parent(self, strategy, **kwargs)
    return callback


TRAINING_EVENTS = [f"{when}_{what}" for what in (
    "training", "training_exp", "train_dataset_adaptation", "training_epoch", "training_iteration",
    "forward", "backward", "update") for when in ("before", "after")]
for _event in TRAINING_EVENTS:
    setattr(EventRecorder, _event, _recording(_event))


@pytest.mark.parametrize("recording", [True, False])
def test_our_strategy_trains_as_avalanche_does(recording):
    """GenerativeStrategy's lean loop: the same callbacks in the same order, the same steps, memory
    and losses as Avalanche's Naive running the same plugin. Recording adds before/after-forward
    callbacks (the loss then starts from zeros, as in Avalanche); without, it starts from the
    criterion."""
    benchmark, _ = small_benchmark(n=200, tasks=1)
    experiences = list(online_experiences(benchmark.train_stream[0]))
    runs = {}
    for name in ("ours", "naive"):
        torch.manual_seed(0)
        model = BernoulliVAE()
        plugin = EventRecorder() if recording else ReservoirPlugin(ReservoirConfig(budget=100), seed=0)
        optimizer = torch.optim.Adam(model.parameters(), 1e-3)
        kwargs = {"model": model, "optimizer": optimizer, "train_mb_size": 64, "train_epochs": 2,
                  "plugins": [plugin]}
        strategy = (GenerativeStrategy(**kwargs) if name == "ours" else
                    Naive(criterion=GenerativeLoss(), evaluator=None, eval_every=-1, **kwargs))
        losses = []
        for experience in experiences:
            strategy.train(experience)
            losses.append(model(experience_images(experience)).mean().item())
        runs[name] = (getattr(plugin, "events", None), strategy.clock.train_iterations, plugin.seen, losses)
    ours, naive = runs["ours"], runs["naive"]
    assert ours[0] == naive[0]
    # batches of 64, 64, 64, 8 images, trained with up to 100 in memory, 2 passes: 1, 2, 3, 2 steps
    assert ours[1] == 2 * (1 + 2 + 3 + 2)
    if recording:
        assert ours[0].count("before_forward") == ours[1]
    assert ours[1:3] == naive[1:3]
    assert ours[3] == pytest.approx(naive[3], rel=1e-6)   # the same training, step for step
