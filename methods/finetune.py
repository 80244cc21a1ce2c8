"""Fine-tune: the lower reference. Trains on each incoming batch only; stores nothing."""
from __future__ import annotations

from dataclasses import dataclass

from methods.core.plugin import GenerativePlugin
from methods.core.registry import register_method


@dataclass(frozen=True)
class FinetuneConfig:
    pass


@register_method("finetune", FinetuneConfig, "no memory: E passes over each incoming batch")
class FinetunePlugin(GenerativePlugin):
    def __init__(self, config: FinetuneConfig = FinetuneConfig(), seed: int = 0):
        super().__init__(seed)
        self.config = config
