"""Minibatches over in-memory tensors, freshly binarized at every pass.

Replaces a torch DataLoader for data that already sits in one tensor: no per-sample
`__getitem__`/collate. Yields Avalanche's [x, y, t] minibatch convention (y, t are zeros).
"""
from __future__ import annotations

import functools
import math

import torch

from streams.stream import binarize


class TensorMinibatches:
    """One pass over `images` in minibatches; or, with `num_batches`, exactly that many minibatches
    (the matched-compute schedule): passes in fresh random orders, repeated and cut where the count
    is reached, so every image is used equally often up to one pass."""

    def __init__(self, images: torch.Tensor, batch_size: int, generator: torch.Generator,
                 shuffle: bool = True, dynamic_binarization: bool = True, num_batches: int | None = None):
        self.images, self.batch_size, self.generator = images, batch_size, generator
        self.shuffle, self.dynamic_binarization = shuffle, dynamic_binarization
        self.num_batches = num_batches

    def __len__(self) -> int:
        if self.num_batches is None or not len(self.images):
            return self._per_pass()
        return self.num_batches

    def _per_pass(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def _one_pass(self):
        n = len(self.images)
        device = self.images.device   # the generator lives there too
        if n == 0:                    # nothing to train on (CN-DPM: every image went to its STM)
            return []
        if n <= self.batch_size:      # one minibatch: the whole set, in any order (a mean loss)
            return [self.images]
        order = (torch.randperm(n, generator=self.generator, device=device) if self.shuffle
                 else torch.arange(n, device=device))
        return (self.images[order[start:start + self.batch_size]] for start in range(0, n, self.batch_size))

    def _batches(self):
        if self.num_batches is None:
            yield from self._one_pass()
            return
        left = self.num_batches if len(self.images) else 0   # no images: no minibatch, not a loop
        while left > 0:
            for x in self._one_pass():
                yield x
                left -= 1
                if left == 0:
                    return

    def __iter__(self):
        device = self.images.device
        for x in self._batches():
            if self.dynamic_binarization:
                x = binarize(x, self.generator)
            zeros = _zeros(len(x), device)
            yield [x, zeros, zeros]


@functools.cache
def _zeros(n: int, device: torch.device) -> torch.Tensor:
    """Avalanche's targets and task labels: zeros, the same tensor for every batch of n images
    (never written to)."""
    return torch.zeros(n, dtype=torch.long, device=device)
