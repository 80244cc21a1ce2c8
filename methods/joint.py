"""Joint training: the upper reference. At each task boundary it trains i.i.d. on all data seen so
far (`epochs` passes, default the profile's `task_epochs`). Needs task boundaries; stores all data."""
from __future__ import annotations

import torch

from methods.catalog import JointConfig
from methods.core import GenerativePlugin, register_method

__all__ = ["JointConfig", "JointPlugin"]


@register_method("joint", JointConfig)   # description and settings: methods/catalog.py
class JointPlugin(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: JointConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.seen: torch.Tensor | None = None

    def replay_images(self):
        return self.seen

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        self.seen = incoming if self.seen is None else torch.cat([self.seen, incoming])

