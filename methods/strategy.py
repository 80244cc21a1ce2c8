"""The one shared strategy: Avalanche's supervised template trained on unlabelled minibatches.

Differences from a plain Avalanche strategy, each for a reason:
- the model's forward is its per-image loss and the criterion averages it (`GenerativeLoss`);
- the forward never passes task ids (task-free methods must not see them);
- data comes from in-memory tensors (`TensorMinibatches`), freshly binarized per pass, not from a
  per-sample DataLoader; a method plugin replaces it with incoming + replayed images;
- no Avalanche metrics or loggers: `bench.evaluate` measures at task boundaries. The (empty)
  EvaluationPlugin Avalanche insists on is kept as `self.evaluator` but taken out of the plugin
  list, with the periodic-evaluation plugin (`eval_every=-1`): their callbacks did nothing and
  cost 0.6 ms per training step (bench.perf);
- per-experience set-up is done only when something changed. A task-free stream is one
  experience per 64-image batch, often one training step each, and Avalanche's `train()` moved
  the model to its device twice, re-ran model adaptation and rebuilt the optimizer's parameter
  map every time (about 2 ms, a sixth of a step). Here the model is moved when it is not on the
  device, adapted only if it has Avalanche `DynamicModule`s, and the optimizer is updated when
  the model's parameters changed (a method that expands its model may also call
  `make_optimizer` itself). The callbacks and their order are Avalanche's.
"""
from __future__ import annotations

import warnings

import torch
from avalanche.models import DynamicModule
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate
from avalanche.training.templates.base import _experiences_parameter_as_iterable
from avalanche.training.templates.base_sgd import PeriodicEval

from methods.base import GenerativePlugin, experience_images
from methods.loader import TensorMinibatches
from methods.vae import GenerativeLoss


class GenerativeStrategy(SupervisedTemplate):
    def __init__(self, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                 train_epochs: int = 1, train_mb_size: int = 64, plugins=None,
                 device: str = "cpu", seed: int = 0):
        with warnings.catch_warnings():  # "no loggers": on purpose, bench.evaluate measures
            warnings.filterwarnings("ignore", message="No loggers specified")
            evaluator = EvaluationPlugin()
        super().__init__(model=model, optimizer=optimizer, criterion=GenerativeLoss(),
                         train_mb_size=train_mb_size, train_epochs=train_epochs,
                         eval_mb_size=train_mb_size, device=device, plugins=plugins,
                         evaluator=evaluator, eval_every=-1)
        # Neither the empty evaluator nor the periodic-evaluation plugin (eval_every=-1) does
        # anything; as plugins they were called 16 times per training step.
        self.plugins = [p for p in self.plugins if p is not self.evaluator and not isinstance(p, PeriodicEval)]
        self._optimized_parameters: tuple | None = None   # parameter ids the optimizer holds
        self._placed_parameters: tuple | None = None      # parameter ids last moved/inspected
        self._dynamic = False                             # the model has Avalanche DynamicModules
        self.generator = torch.Generator(self.device).manual_seed(seed)

    def train(self, experiences, eval_streams=None, **kwargs):
        """Avalanche's `BaseTemplate.train` (same callbacks, same order) without its per-call
        `model.to(device)` and `model.train()` when the model is already there and training,
        and without evaluation streams (`eval_every=-1`: there is no periodic evaluation to
        feed). Methods that switch the model to eval mode switch it back (`was_training`)."""
        self.is_training = True
        self._stop_training = False
        if not self.model.training:   # Module.train() walks every submodule: skipped when set
            self.model.train()
        self._place_model()
        self._before_training(**kwargs)
        for self.experience in _experiences_parameter_as_iterable(experiences):
            self._before_training_exp(**kwargs)
            self._train_exp(self.experience, [], **kwargs)
            self._after_training_exp(**kwargs)
        self._after_training(**kwargs)
        self._train_cleanup()
        return self.evaluator.get_last_metrics()

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

    def train_dataset_adaptation(self, **kwargs):
        self.adapted_dataset = self.experience.dataset

    def make_train_dataloader(self, **kwargs):
        if self.method is None:  # otherwise the method plugin installs its own
            self.dataloader = TensorMinibatches(experience_images(self.experience).to(self.device),
                                                self.train_mb_size, self.generator)

    def forward(self):
        return self.model(self.mb_x)
