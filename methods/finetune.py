"""Fine-tune: the lower reference. Trains on each incoming batch only; stores nothing."""
from __future__ import annotations

from methods.catalog import FinetuneConfig
from methods.core import GenerativePlugin, register_method

__all__ = ["FinetuneConfig", "FinetunePlugin"]


@register_method("finetune", FinetuneConfig)   # description and settings: methods/catalog.py
class FinetunePlugin(GenerativePlugin):
    """Everything it does is the base plugin's: train on the incoming images."""
