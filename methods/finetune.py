"""Fine-tune: the lower reference. Trains on each incoming batch only; stores nothing."""
from __future__ import annotations

from dataclasses import dataclass

from methods.core import GenerativePlugin, register_method


@dataclass(frozen=True)
class FinetuneConfig:
    pass


@register_method("finetune", FinetuneConfig, "no memory: E passes over each incoming batch")
class FinetunePlugin(GenerativePlugin):
    """Everything it does is the base plugin's: train on the incoming images."""
