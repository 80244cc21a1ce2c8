"""The one shared strategy: Avalanche's supervised template trained on unlabelled minibatches.

Differences from a plain Avalanche strategy, each for a reason:
- the model's forward is its per-image loss and the criterion averages it (`GenerativeLoss`);
- the forward never passes task ids (task-free methods must not see them);
- data comes from in-memory tensors (`TensorMinibatches`), freshly binarized per pass, not from a
  per-sample DataLoader; a method plugin replaces it with incoming + replayed images;
- no Avalanche metrics or loggers: `bench.evaluate` measures at task boundaries.
"""
from __future__ import annotations

import warnings

import torch
from avalanche.training.plugins import EvaluationPlugin
from avalanche.training.templates import SupervisedTemplate

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
        self.generator = torch.Generator(self.device).manual_seed(seed)

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
