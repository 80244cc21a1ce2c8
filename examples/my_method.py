"""A method defined outside the harness, in one file: a sliding-window memory.

`window` keeps the most recent `budget` images of the stream (first in, first out); for each
incoming batch it trains E passes over batch + memory, the schedule of `reservoir` and OCM, so it
differs from `reservoir` only in which images it keeps. Run it like any built-in method:

    python -m bench.run --import examples/my_method.py --methods window,reservoir \
        --streams mini --profile smoke --set window.budget=256

(or `ocm-bench run ...` once the package is installed). `--set window.budget=N` and variants such
as `window[budget=match:ocm]` work as for built-in methods: the config dataclass below is typed,
its fields are the method's settings, and each field declares its own bounds (`setting(...)`:
`budget=0` is refused before anything runs; `match:ocm` is allowed because the field says so).
An installed package registers its methods through the `ocm_bench.methods` entry point group
instead of `--import`. The contract (image shapes, what to override): docs/architecture.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods import GenerativePlugin, register_method, setting


@dataclass(frozen=True)
class WindowConfig:
    budget: int = setting(3000, min=1, matchable=True)   # images kept: the most recent ones


@register_method("window", WindowConfig,
                 "sliding window: the most recent `budget` images; E passes over batch + memory")
class WindowPlugin(GenerativePlugin):
    """Images arrive as float32 [N, 1, 28, 28] grey levels in [0, 1] (the strategy binarizes them
    afresh at every pass); the memory keeps them grey."""

    def __init__(self, config: WindowConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.memory: torch.Tensor | None = None

    def replay_images(self) -> torch.Tensor | None:
        return self.memory   # trained on with each incoming batch (GenerativePlugin.training_images)

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        """After training on `incoming`: append it, drop the oldest images beyond the budget."""
        joined = incoming if self.memory is None else torch.cat([self.memory, incoming])
        self.memory = joined[max(0, len(joined) - self.config.budget):].clone()

    def extra_stats(self) -> dict:
        return {"window_oldest": self.stream_position - len(self.memory)}   # stream index of the oldest kept
