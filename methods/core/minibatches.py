"""Minibatches over in-memory tensors, freshly binarized at every pass.

Replaces a torch DataLoader for data that already sits in one tensor: no per-sample
`__getitem__`/collate. Yields Avalanche's [x, y, t] minibatch convention (y, t are zeros).
The draws are planned by `passes()`, which the strategy's fused training step (static_step.py)
follows too, so that both paths draw the same minibatches from the same random stream.
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

    def batch_sizes(self) -> list[int]:
        """The sizes of the minibatches one iteration yields (arithmetic only: nothing is drawn)."""
        n, size = len(self.images), self.batch_size
        one_pass = [min(size, n - start) for start in range(0, n, size)]
        if self.num_batches is None or not one_pass:
            return one_pass
        return (one_pass * math.ceil(self.num_batches / len(one_pass)))[:self.num_batches]

    def _order(self) -> torch.Tensor | None:
        """One pass's order of the images (drawn now, from the generator); None: the whole set as it
        is (one minibatch of at most `batch_size` images: a mean loss, any order is the same)."""
        n = len(self.images)
        if n <= self.batch_size:
            return None
        device = self.images.device   # the generator lives there too
        return (torch.randperm(n, generator=self.generator, device=device) if self.shuffle
                else torch.arange(n, device=device))

    def passes(self):
        """The plan, lazily: per pass, (order, [(start, stop), ...]): minibatch i is
        `images[order[start:stop]]` (or all images when order is None). Each pass's order is drawn
        when the pass is reached, so the random stream is consumed exactly as training goes."""
        n, size = len(self.images), self.batch_size
        if n == 0:                    # nothing to train on (CN-DPM: every image went to its STM)
            return
        bounds = [(start, min(start + size, n)) for start in range(0, n, size)]
        left = self.num_batches
        while True:
            cut = bounds if left is None else bounds[:left]
            yield self._order(), cut
            if left is None:
                return
            left -= len(cut)
            if left <= 0:
                return

    def __iter__(self):
        device = self.images.device
        for order, bounds in self.passes():
            for start, stop in bounds:
                x = self.images if order is None else self.images[order[start:stop]]
                if self.dynamic_binarization:
                    x = binarize(x, self.generator)
                zeros = _zeros(len(x), device)
                yield [x, zeros, zeros]


@functools.cache
def _zeros(n: int, device: torch.device) -> torch.Tensor:
    """Avalanche's targets and task labels: zeros, the same tensor for every batch of n images
    (never written to)."""
    return torch.zeros(n, dtype=torch.long, device=device)
