"""The plugin base class every method subclasses (the method's mechanism; the strategy does the rest).

A method is an Avalanche plugin: it works on our `GenerativeStrategy` and on any plain Avalanche
strategy (e.g. `Naive(model, opt, criterion=GenerativeLoss(), plugins=[ReservoirPlugin()])`).
The schedule is the paper's: for each incoming experience (an online batch, or a whole task for
methods that need boundaries) the strategy trains `train_epochs` passes over
`training_images(incoming)` = the incoming images plus whatever the method replays, freshly
binarized each time; then `update_memory()` sees the incoming images.

What a method defines: its config (a dataclass, given to `register_method`), and any of
`training_images`/`replay_images`, `update_memory`, `memory_size`, `build_model`, `train_epochs`,
`extra_stats`, plus Avalanche hooks for what happens inside a step (LGM's consistency term,
CURL's buffer). What it does not: the finite-loss check and the minibatches belong to
`GenerativeStrategy` (methods/core/strategy.py); a method that overrides a hook cannot lose them.
"""
from __future__ import annotations

import math
from typing import ClassVar

import torch
from avalanche.core import SupervisedPlugin

from methods.core.helpers import experience_images
from methods.core.minibatches import TensorMinibatches
from methods.models.vae import BernoulliVAE


def same_device(a: torch.device, b: torch.device) -> bool:
    """`cuda` and `cuda:0` are the same device (an unindexed CUDA device is the current one)."""
    a, b = torch.device(a), torch.device(b)
    if a.type != b.type:
        return False
    if a.type != "cuda":
        return True
    current = torch.cuda.current_device()
    return (a.index if a.index is not None else current) == (b.index if b.index is not None else current)


class GenerativePlugin(SupervisedPlugin):
    """Base class of all methods (the contract: docs/architecture.md#writing-a-method).

    Images: every tensor of images a method is given or returns is float32 `[N, C, H, W]` with
    grey levels in [0, 1] (not binarized: the strategy draws a fresh binarization at every pass),
    on the strategy's device; C, H, W are the stream's (`self.image_shape`, set by the harness before
    `build_model`; 1, 28, 28 for every shipped stream), and `self.input_dim` their product.

    Define (all optional; the base trains on the incoming images and stores nothing):
    - `replay_images()`: what you store and train on with each incoming batch, or None; or
      `training_images(incoming)` for full control of what one experience trains on;
    - `update_memory(incoming, strategy)`: after training on `incoming`, update the memory;
    - `memory_size`: a *property*, the samples stored; override it only when that is not
      `len(replay_images())` (a buffer not trained on, say);
    - `build_model(profile)`, `train_epochs(profile)`, `extra_stats()`, `num_components(model)`;
    - `needs_task_boundaries = True` (a class attribute) to get whole tasks as experiences;
    - Avalanche hooks (`before_forward`, `after_backward`, ...) only for what happens inside a
      training step; a method with one trains eager (methods/core/static_step.py).
    `__init__(self, config=None, seed=0)` needs no override; if you add state there, call
    `super().__init__(config, seed)` first. `self.config` is the config dataclass instance (its
    defaults when None), `self.generator` a torch.Generator seeded with `seed`, moved to the
    strategy's device at the first experience: draw every random number from it. Register the
    class with `@register_method(NAME, Config, description)` (methods/core/registry.py)."""

    name: ClassVar[str] = "base"
    config_class: ClassVar[type | None] = None   # set by register_method
    needs_task_boundaries: ClassVar[bool] = False
    # its experiences are whole tasks (or, task-free, a buffer it treats as one): it trains
    # `task_epochs` passes over each, not E (defaults to needing task boundaries)
    trains_whole_tasks: ClassVar[bool] = False
    # C, H, W of the stream's images: the harness sets it to the stream's before `build_model`
    image_shape: tuple[int, ...] = (1, 28, 28)

    def __init__(self, config=None, seed: int = 0):
        super().__init__()
        if config is None:
            config = self.config_class() if self.config_class is not None else None
        self.config = config
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)
        self._incoming: torch.Tensor | None = None
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
        """Stored grey images [M, C, H, W] in [0, 1] trained on together with the incoming ones
        (by `training_images`, each pass freshly binarized); None if none."""
        return None

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """What the strategy trains on for this experience, [K, C, H, W] grey in [0, 1] (called once,
        before training): the incoming images [N, C, H, W] and `replay_images()` by default. An
        empty result trains nothing (a method that waits, e.g. limix-taskfree's buffer)."""
        replay = self.replay_images()
        return incoming if replay is None or len(replay) == 0 else torch.cat([incoming, replay])

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        """Called once per experience, after training on it: `incoming` [N, C, H, W] grey in [0, 1];
        `strategy` gives the model (`strategy.model`) and the device (None on unit tests)."""

    @property
    def memory_size(self) -> int:
        """Number of samples the method stores (a property: override with `@property`); tables
        report it, and `budget=match:METHOD` matches another method's peak of it."""
        replay = self.replay_images()
        return 0 if replay is None else len(replay)

    def num_components(self, model: torch.nn.Module) -> int:
        """The model's mixture components at the end (for the record)."""
        return getattr(model, "num_components", 1)

    def extra_stats(self) -> dict:
        """Method-specific numbers for the record (e.g. OCM's STM/LTM sizes): JSON-serialisable.
        They land in the record's `extras` (`record.extras["stm_size"]`; a key that is a field of
        the record or of a metric is refused)."""
        return {}

    def construction_warnings(self, images_per_task: list[int], batch_size: int) -> list[str]:
        """Settings that, on a stream of these task sizes and incoming batches, make this method
        another by construction (a rule that can never fire): each a sentence, printed before the
        cell trains and kept in its record (`construction_warnings`)."""
        return []

    # ----------------------------------------------------------- how our runner assembles it
    @property
    def input_dim(self) -> int:
        """Pixels per image, C x H x W of the stream's images (`image_shape`): the models' input size."""
        return math.prod(self.image_shape)

    def build_model(self, profile) -> torch.nn.Module:
        """The model this method trains, given the cell's profile (bench/planning/profiles.py:
        `mc_samples`, `lr`, ...): the paper's Bernoulli MLP VAE by default, of the stream's input
        size (`self.input_dim`). Any model of the contract in methods/models/contract.py works (the
        evaluator, FID and picture grids use only it); the harness moves it to the device and
        builds the optimizer."""
        return BernoulliVAE(input_dim=self.input_dim, mc_samples=profile.mc_samples)

    def train_epochs(self, profile) -> int:
        """Passes over `training_images` per experience: the method's own `epochs` setting when its
        config has one and it is given, else the profile's: `task_epochs` for a method that trains
        on whole tasks (`trains_whole_tasks`: joint, LGM, LIMix), E (`epochs`) for the others."""
        own = getattr(self.config, "epochs", None)
        return own or (profile.task_epochs if self.trains_whole_tasks else profile.epochs)

    # ------------------------------------------------------- the experience, seen by the strategy
    def begin_experience(self, incoming: torch.Tensor, device) -> torch.Tensor:
        """The incoming images arrive (on `device`): returns what to train on."""
        self.bind_device(device)
        self._incoming = incoming
        self.stream_position += len(incoming)
        return self.training_images(incoming)

    def end_experience(self, strategy) -> None:
        """After training on the experience: the memory sees the incoming images."""
        self.memory_peak = max(self.memory_peak, self.memory_size)   # incl. what arrived (OCM's STM)
        if self._incoming is None:
            raise RuntimeError(f"{self.name}: end_experience without begin_experience")
        self.update_memory(self._incoming, strategy)
        self.memory_peak = max(self.memory_peak, self.memory_size)
        self._incoming = None

    # --------------------------------------------------------------------- Avalanche hooks
    def before_training_exp(self, strategy, **kwargs):
        """On a plain Avalanche strategy, which knows nothing of methods, the plugin installs the
        experience's minibatches itself (as Avalanche's own replay plugin does);
        `GenerativeStrategy` has already made them (`method_minibatches`)."""
        if not getattr(strategy, "makes_method_minibatches", False):
            strategy.dataloader = method_minibatches(self, strategy)

    def after_training_exp(self, strategy, **kwargs):
        self.end_experience(strategy)


def method_minibatches(method: GenerativePlugin, strategy) -> TensorMinibatches:
    """The experience's minibatches: the method admits the incoming images and says what to train
    on; E passes over it, or the matched-compute count (`GenerativeStrategy.minibatches_for`)."""
    incoming = experience_images(strategy.experience).to(strategy.device)
    images = method.begin_experience(incoming, strategy.device)
    schedule = getattr(strategy, "minibatches_for", None)
    return TensorMinibatches(images, strategy.train_mb_size, method.generator,
                             num_batches=schedule(len(incoming)) if schedule is not None else None)
