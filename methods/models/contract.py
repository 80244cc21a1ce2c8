"""The model contract: what the harness asks of a generative model, declared in one place.

The evaluator (bench/evaluation/nll.py), FID and the picture grids, and every method that reads
its model (OCM's selection, CURL's and OCM's expansion) use a model only through these members.
A model is a mixture of C >= 1 components with declared mixture weights; today's models
(`BernoulliVAE`, `CURLModel`) weight their components uniformly (`uniform_log_weights`), a
count-weighted mixture such as CN-DPM declares its own.

`forward(x)` is the per-image training loss (so any Avalanche strategy can train the model with
`GenerativeLoss` as its criterion).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class GenerativeModel(Protocol):
    """What the evaluator, FID, the sampler and the picture grids need."""

    @property
    def num_components(self) -> int:
        """C, the number of mixture components (1 for a plain VAE)."""

    def log_mixture_weights(self) -> torch.Tensor:
        """log w_c of the mixture p(x) = sum_c w_c p_c(x): [C], on the model's device, summing to 1
        in probability. Sampling and the likelihood use these weights."""

    def component_log_weights(self, x: torch.Tensor, k: int,
                              generator: torch.Generator | None = None) -> torch.Tensor:
        """Log importance weights log p_c(x, z) - log q_c(z | x) of k posterior samples per
        component, for binary images x: [C, k, B] (nats)."""

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities of n unconditional samples: [n, D]."""

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel probabilities of the images' reconstructions: [B, D]."""


@runtime_checkable
class SelectionFeatures(Protocol):
    """What OCM's diversity selection also needs: features of images (posterior means)."""

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, F] features of binary images x."""


def uniform_log_weights(components: int, device: torch.device | str | None = None) -> torch.Tensor:
    """log(1/C) for each of C components."""
    return torch.full((components,), -math.log(components), device=device)


def is_uniform(log_weights: torch.Tensor) -> bool:
    return bool((log_weights == log_weights[0]).all())


def draw_components(log_weights: torch.Tensor, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """n component indices drawn with the mixture's weights. Uniform weights use `randint`, the
    draw every uniform mixture has always made, so records made before weights were declared stay
    reproducible; other weights use `multinomial`."""
    device = log_weights.device
    if is_uniform(log_weights):
        return torch.randint(len(log_weights), (n,), generator=generator, device=device)
    return torch.multinomial(log_weights.exp(), n, replacement=True, generator=generator)


def mixture_log_likelihood(per_component: torch.Tensor, log_weights: torch.Tensor) -> torch.Tensor:
    """log sum_c w_c p_c(x) from [C, B] per-component estimates log p_c(x) and log w_c [C].

    The largest weight is factored out (log w_max + logsumexp_c(log p_c + log w_c - log w_max)),
    which is stable and, for uniform weights, exactly the familiar logsumexp_c(log p_c) - log C."""
    top = log_weights.max()
    shifted = (log_weights - top).to(per_component.dtype)
    return torch.logsumexp(per_component + shifted[:, None], 0) + top.to(per_component.dtype)


@contextmanager
def eval_mode(model: torch.nn.Module):
    """Run a block with `model` in eval mode and restore its mode afterwards (evaluation in the
    middle of training must not leave a model that was training switched off)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)
