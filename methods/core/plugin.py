"""The plugin base class every method subclasses.

A method is an Avalanche plugin: it works on our `GenerativeStrategy` and on any plain Avalanche
strategy (e.g. `Naive(model, opt, criterion=GenerativeLoss(), plugins=[ReservoirPlugin()])`).
The schedule is the paper's: for each incoming experience (an online batch, or a whole task for
methods that need boundaries) the strategy trains `train_epochs` passes over
`training_images()` = the incoming images plus whatever the method replays, freshly binarized
each time; then `update_memory()` sees the incoming images.
"""
from __future__ import annotations

import math
from copy import deepcopy
from typing import ClassVar

import torch
from avalanche.core import SupervisedPlugin
from torch.utils.data import DataLoader

from methods.core.minibatches import TensorMinibatches
from methods.models.vae import BernoulliVAE
from streams.benchmark import IMAGES_ATTRIBUTE

FINITE_CHECK_EVERY = 100   # GPU training steps between checks that the loss stayed finite


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the run is stopped rather than continued."""


def same_device(a: torch.device, b: torch.device) -> bool:
    """`cuda` and `cuda:0` are the same device (an unindexed CUDA device is the current one)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


def experience_images(experience) -> torch.Tensor:
    """All images of an experience as one tensor: the tensor our benchmarks attach to their
    datasets (`bench_images`), else extracted once with a DataLoader and cached on the dataset."""
    dataset = experience.dataset
    cached = getattr(dataset, IMAGES_ATTRIBUTE, None)
    if cached is None:
        loader = DataLoader(dataset, batch_size=max(len(dataset), 1),
                            collate_fn=getattr(dataset, "collate_fn", None))
        cached = next(iter(loader))[0]
        setattr(dataset, IMAGES_ATTRIBUTE, cached)
    return cached


def frozen_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` in eval mode with no trainable parameters (LGM's teacher, CURL's snapshot)."""
    copy = deepcopy(model).eval()
    for p in copy.parameters():
        p.requires_grad_(False)
    return copy


def extend_minibatch(strategy, images: torch.Tensor) -> None:
    """Append (generated) images to the strategy's current minibatch, keeping [x, y, t] aligned."""
    x = strategy.mbatch[0]
    zeros = torch.zeros(len(images), dtype=strategy.mbatch[1].dtype, device=x.device)
    strategy.mbatch[0] = torch.cat([x, images.view(len(images), *x.shape[1:])])
    for i in range(1, len(strategy.mbatch)):
        strategy.mbatch[i] = torch.cat([strategy.mbatch[i], zeros])


class GenerativePlugin(SupervisedPlugin):
    """Base class of all methods. Subclasses override `replay_images` and `update_memory`."""

    name: ClassVar[str] = "base"
    needs_task_boundaries: ClassVar[bool] = False

    def __init__(self, seed: int = 0):
        super().__init__()
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._incoming: torch.Tensor | None = None
        self._losses: list[torch.Tensor] = []      # GPU losses since the last finiteness check
        self._bound_device = None
        self.stream_position = 0    # incoming images seen so far (the x axis of timelines)
        self.memory_peak = 0        # the most samples stored at any time
        self.timeline: list[dict] = []   # method events (OCM selections, CURL expansions)
        self.extra_steps = 0        # gradient steps taken outside the strategy's loop (CURL)
        self.extra_images = 0       # images in those steps

    def bind_device(self, device) -> None:
        """Random draws happen where the data lives: on the strategy's device the generator is
        re-created there with the same seed (once, at the first experience, before any draw)."""
        if device is self._bound_device:   # the strategy's device object: checked already
            return
        if not same_device(self.generator.device, device):
            self.generator = torch.Generator(device).manual_seed(self.seed)
        self._bound_device = device

    # ----------------------------------------------------------------- what subclasses define
    def replay_images(self) -> torch.Tensor | None:
        """Stored (grey) images trained on together with the incoming ones; None if none."""
        return None

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        """Called once per experience, after training on it (`strategy` gives the model)."""

    @property
    def memory_size(self) -> int:
        """Number of samples the method stores."""
        replay = self.replay_images()
        return 0 if replay is None else len(replay)

    def num_components(self, model: torch.nn.Module) -> int:
        return getattr(model, "num_components", 1)

    def extra_stats(self) -> dict:
        """Method-specific numbers for the record (e.g. OCM's STM/LTM sizes)."""
        return {}

    # ----------------------------------------------------------- how our runner assembles it
    def build_model(self, profile) -> torch.nn.Module:
        return BernoulliVAE(mc_samples=profile.mc_samples)

    def train_epochs(self, profile) -> int:
        return profile.epochs

    # --------------------------------------------------------------------- Avalanche hooks
    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """What the strategy trains on for this experience (called once, before training)."""
        replay = self.replay_images()
        return incoming if replay is None or len(replay) == 0 else torch.cat([incoming, replay])

    def before_training_exp(self, strategy, **kwargs):
        self.bind_device(strategy.device)
        self._incoming = experience_images(strategy.experience).to(strategy.device)
        self.stream_position += len(self._incoming)
        strategy.dataloader = TensorMinibatches(self.training_images(self._incoming),
                                                strategy.train_mb_size, self.generator,
                                                num_batches=self.matched_steps(strategy))

    def matched_steps(self, strategy) -> int | None:
        """The matched-compute schedule (GenerativeStrategy.minibatches_for): this experience gets
        `steps_per_batch` minibatches per `train_mb_size` incoming images, whatever the method
        trains on. None (a plain Avalanche strategy, or the paper's schedule): E passes."""
        schedule = getattr(strategy, "minibatches_for", None)
        return schedule(len(self._incoming)) if schedule is not None else None

    def before_backward(self, strategy, **kwargs):
        loss = strategy.loss.detach()
        if loss.device.type == "cpu":   # reading a CPU loss costs a microsecond: check every step
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(f"{self.name}: the training loss became NaN or infinite at "
                                         f"training step {strategy.clock.train_iterations + 1}")
        else:  # reading it would make the CPU wait for the GPU: kept there, checked every
            self._losses.append(loss)   # FINITE_CHECK_EVERY steps and at each experience's end

    def after_training_iteration(self, strategy, **kwargs):
        if strategy.clock.train_iterations % FINITE_CHECK_EVERY == 0:
            self.check_finite(strategy)

    def check_finite(self, strategy) -> None:
        losses, self._losses = self._losses, []
        if losses and not bool(torch.isfinite(torch.cat([loss.reshape(-1) for loss in losses])).all()):
            raise NonFiniteLossError(
                f"{self.name}: the training loss became NaN or infinite (detected at training step "
                f"{strategy.clock.train_iterations}, at most {FINITE_CHECK_EVERY} steps after)")

    def after_training_exp(self, strategy, **kwargs):
        self.check_finite(strategy)
        self.memory_peak = max(self.memory_peak, self.memory_size)   # incl. what arrived (OCM's STM)
        self.update_memory(self._incoming, strategy)
        self.memory_peak = max(self.memory_peak, self.memory_size)
        self._incoming = None
