"""Reservoir replay: a uniform sample of the stream in a fixed budget (Vitter's algorithm R).

Same schedule as OCM: each incoming batch, then E passes over batch + memory."""
from __future__ import annotations

import torch

from methods.catalog import ReservoirConfig
from methods.core import GenerativePlugin, register_method

__all__ = ["ReservoirConfig", "ReservoirPlugin"]


@register_method("reservoir", ReservoirConfig)   # description and settings: methods/catalog.py
class ReservoirPlugin(GenerativePlugin):
    def __init__(self, config: ReservoirConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        # One preallocated block, [head rows | budget rows]: the memory (`buffer`) is its tail, and
        # each incoming batch is copied into the head just before it, so that what the strategy
        # trains on, incoming + memory, is a view of the block rather than a concatenation (a
        # copy of the whole memory per incoming batch: 1.4 ms at 2,600 images, bench.perf).
        self.block: torch.Tensor | None = None
        self.buffer: torch.Tensor | None = None   # block[head:], [budget, ...]
        self.filled = 0
        self.seen = 0

    def replay_images(self):
        return None if self.buffer is None else self.buffer[:self.filled]

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """incoming + memory, in that order (as `torch.cat` would give them), without the copy: a
        view of the block, valid until the next `training_images` or `update_memory` writes it
        (the strategy trains on it in between)."""
        head = 0 if self.block is None else len(self.block) - len(self.buffer)
        if self.filled == 0 or len(incoming) > head or incoming.device != self.block.device:
            return super().training_images(incoming)
        start = head - len(incoming)
        self.block[start:head].copy_(incoming)
        return self.block[start:head + self.filled]

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        budget = self.config.budget
        if self.buffer is None:
            head = max(len(incoming), getattr(strategy, "train_mb_size", 0))
            self.block = incoming.new_empty((head + budget, *incoming.shape[1:]))
            self.buffer = self.block[head:]
        # Stream positions of the incoming samples; sample i at position n is kept with
        # probability budget / (n + 1), replacing a uniformly chosen slot.
        device = self.generator.device
        positions = torch.arange(self.seen, self.seen + len(incoming), device=device)
        slots = (torch.rand(len(incoming), generator=self.generator, device=device) * (positions + 1)).long()
        slots = torch.where(positions < budget, positions, slots).tolist()
        latest = {slot: i for i, slot in enumerate(slots) if slot < budget}  # in order: later ones win
        if latest:
            index = torch.tensor(list(latest), device=self.buffer.device)
            source = torch.tensor(list(latest.values()), device=incoming.device)
            self.buffer[index] = incoming[source]
        self.seen += len(incoming)
        self.filled = min(self.seen, budget)
