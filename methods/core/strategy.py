"""The one shared strategy: Avalanche's supervised template trained on unlabelled minibatches.

Differences from a plain Avalanche strategy, each for a reason:
- the model's forward is its per-image loss and the criterion averages it (`GenerativeLoss`);
- the forward never passes task ids (task-free methods must not see them);
- data comes from in-memory tensors (`TensorMinibatches`), freshly binarized per pass, not from a
  per-sample DataLoader: incoming + replayed images, as the method plugin says
  (`method_minibatches`); the strategy owns the minibatches and the finite-loss check, so a
  method that overrides a hook cannot lose either;
- no Avalanche metrics or loggers: `bench.evaluation.nll` measures at task boundaries. The (empty)
  EvaluationPlugin Avalanche insists on is kept as `self.evaluator` but taken out of the plugin
  list, with the periodic-evaluation plugin (`eval_every=-1`): their callbacks did nothing and
  cost 0.6 ms per training step (bench.perf);
- per-experience set-up is done only when something changed. A task-free stream is one
  experience per 64-image batch, often one training step each, and Avalanche's `train()` moved
  the model to its device twice, re-ran model adaptation and rebuilt the optimizer's parameter
  map every time (about 2 ms, a sixth of a step). Here the model is moved when it is not on the
  device, adapted only if it has Avalanche `DynamicModule`s, and the optimizer is updated when
  the model's parameters changed, read from their ids (13 us per experience; a method that grows
  its model also calls `refresh_optimizer` at once). The callbacks and their order are Avalanche's;
- callbacks are dispatched from per-event lists that leave out the plugin base classes' empty
  methods (`PluginHooks`), and a step starts its loss from the criterion itself rather than
  `zeros(1) += criterion` when no plugin can add a term before the criterion (no before/after
  forward callback). Avalanche's dispatch asked every plugin for every event, 10 times a step.
"""
from __future__ import annotations

import math
import warnings

import torch
from avalanche.core import BasePlugin, BaseSGDPlugin, SupervisedPlugin
from avalanche.models import DynamicModule
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base import _experiences_parameter_as_iterable
from avalanche.training.templates.base_sgd import PeriodicEval

from methods.core.helpers import experience_images
from methods.core.minibatches import TensorMinibatches
from methods.core.plugin import GenerativePlugin, method_minibatches
from methods.core.static_step import FusedStep
from methods.core.training_step import check_training_step, resolve_training_step
from methods.models.vae import GenerativeLoss

_EMPTY_CALLBACKS = frozenset(
    getattr(cls, name) for cls in (BasePlugin, BaseSGDPlugin, SupervisedPlugin)
    for name in dir(cls) if name.startswith(("before_", "after_")))


FINITE_CHECK_EVERY = 100   # GPU training steps between checks that the loss stayed finite
# Events called at every training step: a plugin with any of these callbacks trains "eager"
PER_STEP_EVENTS = ("before_training_iteration", "before_forward", "after_forward", "before_backward",
                   "after_backward", "before_update", "after_update", "after_training_iteration")


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite: the run is stopped rather than continued."""


class FiniteLossCheck:
    """Stops training when the loss becomes NaN or infinite. A CPU loss is read every step (a
    microsecond); reading a GPU loss would make the CPU wait for the GPU, so GPU losses are kept
    there and checked every FINITE_CHECK_EVERY steps and at each experience's end."""

    def __init__(self, who: str):
        self.who = who
        self._pending: list[torch.Tensor] = []

    def step(self, loss: torch.Tensor, step: int) -> None:
        loss = loss.detach()
        if loss.device.type == "cpu":
            if not math.isfinite(loss.item()):
                raise NonFiniteLossError(f"{self.who}: the training loss became NaN or infinite at "
                                         f"training step {step}")
            return
        self._pending.append(loss)
        if step % FINITE_CHECK_EVERY == 0:
            self.flush(step)

    def require(self, finite: bool, step: int) -> None:
        """Raise for a loss found non-finite elsewhere (a captured step's on-device flag)."""
        if not finite:
            raise NonFiniteLossError(
                f"{self.who}: the training loss became NaN or infinite (detected at training step "
                f"{step}, at most {FINITE_CHECK_EVERY} steps after)")

    def flush(self, step: int) -> None:
        losses, self._pending = self._pending, []
        if losses and not bool(torch.isfinite(torch.cat([loss.reshape(-1) for loss in losses])).all()):
            raise NonFiniteLossError(
                f"{self.who}: the training loss became NaN or infinite (detected at training step "
                f"{step}, at most {FINITE_CHECK_EVERY} steps after)")


class PluginHooks:
    """Each training event's callbacks, in plugin order, without the plugin base classes' empty
    methods: `hooks["before_forward"]` is a tuple of bound methods (looked up once per event)."""

    def __init__(self, plugins):
        self.plugins, self._table = tuple(plugins), {}

    def __getitem__(self, event: str) -> tuple:
        callbacks = self._table.get(event)
        if callbacks is None:
            bound = (getattr(p, event, None) for p in self.plugins)
            callbacks = self._table[event] = tuple(
                method for method in bound
                if method is not None and getattr(method, "__func__", method) not in _EMPTY_CALLBACKS)
        return callbacks

    def __call__(self, event: str, strategy, kwargs) -> None:
        for callback in self[event]:
            callback(strategy, **kwargs)


class GenerativeStrategy(SupervisedTemplate):
    makes_method_minibatches = True   # method plugins need not install their own (plugin.py)

    def __init__(self, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 train_epochs: int = 1, train_mb_size: int = 64, plugins=None,
                 device: str = "cpu", seed: int = 0, steps_per_batch: int | None = None,
                 training_step: str = "auto"):
        with warnings.catch_warnings():  # "no loggers": on purpose, bench.evaluation.nll measures
            warnings.filterwarnings("ignore", message="No loggers specified")
            evaluator = EvaluationPlugin()
        super().__init__(model=model, optimizer=optimizer, criterion=GenerativeLoss(),
                         train_mb_size=train_mb_size, train_epochs=train_epochs,
                         eval_mb_size=train_mb_size, device=device, plugins=plugins,
                         evaluator=evaluator, eval_every=-1)
        # Neither the empty evaluator nor the periodic-evaluation plugin (eval_every=-1) does
        # anything; as plugins they were called 16 times per training step.
        self.plugins: list = [p for p in self.plugins if p is not self.evaluator and not isinstance(p, PeriodicEval)]
        self._optimized_parameters: tuple | None = None   # parameter ids the optimizer holds
        self._placed_parameters: tuple | None = None      # parameter ids last moved/inspected
        self._dynamic = False                             # the model has Avalanche DynamicModules
        self._hooks: PluginHooks | None = None            # the plugins' callbacks, set by train()
        self._per_step = False                            # some plugin acts at every step
        self.generator = torch.Generator(self.device).manual_seed(seed)
        # The schedule: None = `train_epochs` passes over what the method trains on (the paper's);
        # N = N minibatches per `train_mb_size` incoming images for every method (matched compute).
        self.steps_per_batch = steps_per_batch
        self.images_trained = 0   # rows in all training minibatches (replayed/generated included)
        # How a training step runs (methods/core/static_step.py): requested, and as resolved by train()
        self.requested_training_step = check_training_step(training_step)
        self.training_step: str | None = None   # the step it runs, resolved at the first experience
        self._fused: FusedStep | None = None
        self._captures = self._replays = 0   # of fused steps released (the model or optimizer changed)
        self._capture_error: str | None = None   # a capture failed: later fused steps are not captured
        method = self.method
        self.finite_loss = FiniteLossCheck(method.name if method is not None else "training")

    def train(self, experiences, eval_streams=None, **kwargs):
        """Avalanche's `BaseTemplate.train` with `BaseSGDTemplate`'s per-experience steps: the same
        callbacks in the same order (tests/test_methods.py compares them with Avalanche's `Naive`),
        dispatched through `PluginHooks`; without its per-call `model.to(device)` and
        `model.train()` when the model is already there and training, and without evaluation
        streams (`eval_every=-1`: there is no periodic evaluation to feed). Methods that switch
        the model to eval mode switch it back (`methods.models.contract.eval_mode`)."""
        self.is_training = True
        self._stop_training = False
        if not self.model.training:   # Module.train() walks every submodule: skipped when set
            self.model.train()
        self._place_model()
        hooks = self._plugin_hooks()
        self.training_step = resolve_training_step(self.requested_training_step, self.device, self._per_step)
        hooks("before_training", self, kwargs)
        for self.experience in _experiences_parameter_as_iterable(experiences):
            hooks("before_train_dataset_adaptation", self, kwargs)
            self.train_dataset_adaptation(**kwargs)
            hooks("after_train_dataset_adaptation", self, kwargs)
            self.make_train_dataloader(**kwargs)
            self.check_model_and_optimizer(**kwargs)
            hooks("before_training_exp", self, kwargs)
            for _ in range(self.train_epochs):
                hooks("before_training_epoch", self, kwargs)
                if self._stop_training:  # early stopping
                    self._stop_training = False
                    break
                self.training_epoch(**kwargs)
                hooks("after_training_epoch", self, kwargs)
            self.finite_loss.flush(self.clock.train_iterations)
            if self._fused is not None:
                self.finite_loss.require(self._fused.check_finite(), self.clock.train_iterations)
            hooks("after_training_exp", self, kwargs)
        hooks("after_training", self, kwargs)
        self._train_cleanup()
        return self.evaluator.get_last_metrics()

    def _plugin_hooks(self) -> PluginHooks:
        """The plugins' callbacks per event, and whether any acts per step: kept between train()
        calls (one per experience) while the plugin list is the same."""
        if self._hooks is None or self._hooks.plugins != tuple(self.plugins):
            self._hooks = PluginHooks(self.plugins)
            self._per_step = self._has_per_step_callbacks(self._hooks)
        return self._hooks

    def _has_per_step_callbacks(self, hooks: PluginHooks) -> bool:
        """Whether a plugin other than the strategy's clock acts at every training step."""
        clock_tick = self.clock.after_training_iteration
        return any(callback != clock_tick for event in PER_STEP_EVENTS for callback in hooks[event])

    def training_epoch(self, **kwargs):
        """Avalanche's `SGDUpdate.training_epoch`: the same callbacks in the same order; or, when no
        plugin acts per step, the fused step (static_step.py), which ticks the clock itself."""
        fused = self._fused_step()
        if fused is not None:
            self._fused_epoch(fused)
            return
        hooks = self._hooks or PluginHooks(self.plugins)
        before_iteration, after_iteration = hooks["before_training_iteration"], hooks["after_training_iteration"]
        before_forward, after_forward = hooks["before_forward"], hooks["after_forward"]
        before_backward, after_backward = hooks["before_backward"], hooks["after_backward"]
        before_update, after_update = hooks["before_update"], hooks["after_update"]
        for self.mbatch in self.dataloader:  # noqa: B020  (Avalanche keeps the batch on the strategy)
            if self._stop_training:
                break
            self._unpack_minibatch()
            for callback in before_iteration:
                callback(self, **kwargs)
            self.optimizer.zero_grad()
            if before_forward or after_forward:   # they may add terms before the criterion
                self.loss = self._make_empty_loss()
                for callback in before_forward:
                    callback(self, **kwargs)
                self.mb_output = self.forward()
                for callback in after_forward:
                    callback(self, **kwargs)
                self.loss += self.criterion()
            else:                                 # 0 + criterion, without the zeros and the add
                self.mb_output = self.forward()
                self.loss = self.criterion()
            self.images_trained += len(self.mbatch[0])
            for callback in before_backward:
                callback(self, **kwargs)
            self.finite_loss.step(self.loss, self.clock.train_iterations + 1)
            self.backward()
            for callback in after_backward:
                callback(self, **kwargs)
            for callback in before_update:
                callback(self, **kwargs)
            self.optimizer_step()
            for callback in after_update:
                callback(self, **kwargs)
            for callback in after_iteration:
                callback(self, **kwargs)

    def step_stats(self) -> dict:
        """CUDA-graph captures and replays so far (for records), when steps were to be captured,
        and why a capture failed if one did (the step then ran fused)."""
        fused = self._fused
        if fused is None or self.training_step != "graph":
            return {}
        error = fused.capture_error or self._capture_error
        return {"graph_captures": self._captures + fused.captures, "graph_replays": self._replays + fused.replays,
                **({"training_step": "fused", "graph_capture_error": error} if error else {})}

    def _fused_step(self) -> FusedStep | None:
        """The fused step for the current model and optimizer (built again when either changed),
        or None when this epoch runs eager."""
        loader = self.dataloader
        if (self.training_step in (None, "eager") or not isinstance(loader, TensorMinibatches)
                or not loader.dynamic_binarization):
            return None
        fused = self._fused
        if fused is None or not fused.serves(self.model, self.optimizer, loader.generator):
            if fused is not None:   # its losses' finiteness is read before its graph goes
                self.finite_loss.require(fused.check_finite(), self.clock.train_iterations)
                self._captures, self._replays = self._captures + fused.captures, self._replays + fused.replays
                self._capture_error = self._capture_error or fused.capture_error
                fused.release()
            mode = "fused" if self._capture_error else self.training_step   # a step that failed to capture once
            fused = self._fused = FusedStep(self.model, self.optimizer, self._criterion, self.train_mb_size,
                                            loader.generator, mode)
        return fused

    def _fused_epoch(self, fused: FusedStep) -> None:
        """One epoch through the fused step: the clock, the image count and the finite-loss check
        as in the eager loop (a replayed step's loss is checked on the device, read every
        FINITE_CHECK_EVERY replays)."""
        loader, clock_tick = self.dataloader, self.clock.after_training_iteration

        def on_step(loss: torch.Tensor, size: int, replayed: bool) -> None:
            self.images_trained += size
            step = self.clock.train_iterations + 1
            if not replayed:
                self.finite_loss.step(loss, step)
            elif fused.replays % FINITE_CHECK_EVERY == 0:
                self.finite_loss.require(fused.check_finite(), step)
            clock_tick(self)

        for order, bounds in loader.passes():
            if self._stop_training:
                break
            loss = fused.run_pass(loader.images, order, bounds, on_step)
            if loss is not None:   # a replayed step's loss tensor is overwritten by the next replay
                self.loss = loss.detach().clone() if fused.last_replayed else loss

    def _place_model(self) -> None:
        """Move the model to the device and look for DynamicModules, when its parameters changed
        (`.to()` keeps parameter identities, so an unchanged tuple of ids means nothing to do)."""
        ids = tuple(map(id, self.model.parameters()))
        if ids != self._placed_parameters:
            if any(p.device != self.device for p in self.model.parameters()):
                self.model.to(self.device)
            self._dynamic = any(isinstance(m, DynamicModule) for m in self.model.modules())
            self._placed_parameters = ids

    def check_model_and_optimizer(self, reset_optimizer_state=False, **kwargs):
        # train() has just placed the model; the optimizer follows any change of its parameters
        if self._dynamic:
            self.model = self.model_adaptation()
        if self.optimized_param_id is None or self._placed_parameters != self._optimized_parameters:
            self.make_optimizer(reset_optimizer_state=reset_optimizer_state, **kwargs)

    def make_optimizer(self, **kwargs):
        super().make_optimizer(**kwargs)
        self._optimized_parameters = tuple(map(id, self.model.parameters()))

    @property
    def method(self) -> GenerativePlugin | None:
        """The method plugin, looked up by type."""
        return next((p for p in self.plugins if isinstance(p, GenerativePlugin)), None)

    def _unpack_minibatch(self):
        """Avalanche's, without three `.to(device)` calls per step when the batch (from our
        loaders) is already on the device."""
        if isinstance(self.mbatch, tuple):
            self.mbatch = list(self.mbatch)
        if any(t.device != self.device for t in self.mbatch):
            super()._unpack_minibatch()

    def train_dataset_adaptation(self, **kwargs):
        self.adapted_dataset = self.experience.dataset

    def make_train_dataloader(self, **kwargs):
        """The experience's minibatches: what the method trains on (incoming + replay), or the
        incoming images when the strategy runs without a method."""
        method = self.method
        if method is not None:
            self.dataloader = method_minibatches(method, self)
            return
        images = experience_images(self.experience).to(self.device)
        self.dataloader = TensorMinibatches(images, self.train_mb_size, self.generator,
                                            num_batches=self.minibatches_for(len(images)))

    def minibatches_for(self, incoming: int) -> int | None:
        """Minibatches for an experience of `incoming` images under matched compute: `steps_per_batch`
        per `train_mb_size` of them; None under the paper's schedule (E passes)."""
        if not self.steps_per_batch:
            return None
        return self.steps_per_batch * max(1, math.ceil(incoming / self.train_mb_size))

    def forward(self):
        return self.model(self.mb_x)
