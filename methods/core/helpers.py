"""Small operations several methods share, each written once."""
from __future__ import annotations

from copy import deepcopy

import torch
from torch.utils.data import DataLoader

from streams.benchmark import IMAGES_ATTRIBUTE


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


def refresh_optimizer(strategy) -> None:
    """After a method grew its model (a new component): the new parameters join the strategy's
    optimizer now, before the next step. Without a strategy (a model used on its own) nothing to do;
    any Avalanche strategy has `make_optimizer`, which keeps the state of the parameters it had."""
    if strategy is not None and hasattr(strategy, "make_optimizer"):
        strategy.make_optimizer()


def binarized_dataset(images: torch.Tensor, generator: torch.Generator | None = None):
    """The images, binarized once (one Bernoulli draw from `generator`), as the (x, y, t) dataset
    Avalanche's plugins iterate over for their importance passes (labels and task ids zero: the
    harness's methods never see them)."""
    from torch.utils.data import TensorDataset

    x = torch.bernoulli(images, generator=generator)
    zeros = torch.zeros(len(x), dtype=torch.long, device=x.device)
    return TensorDataset(x, zeros, zeros)
