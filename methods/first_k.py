"""First-k: the paper's "VAE-ELBO-Random" baseline as the authors' released code behaves.

Evidence (no released script of the authors keeps a uniform random memory of 3K): their
3,000-sample single-VAE script appends each incoming batch to its memory and, when the memory
exceeds 3,000, keeps `memory[index][0:3000]` with an index list that is never shuffled; training
then uses the memory only (the variable holding the incoming batch is not used). So from the 47th
batch on the memory is the first ~3,000 images of the stream and every later batch is cut off
before training. Its IWELBO siblings do shuffle (and keep 512). This is strong evidence about what
"VAE-ELBO-Random" was, not proof that this script produced Table 1 (-150.79 nats on Split MNIST).

Behaviour: per incoming batch, append it, keep the first `budget` images, then E passes over the
memory alone. `train_incoming=True` also trains on the incoming images that were cut off (memory
+ incoming once full): the variant a reader of the paper's word "random" might expect from a
memory that stops growing. `reservoir` is the true uniform sample.
"""
from __future__ import annotations

import torch

from methods.catalog import FirstKConfig
from methods.core import GenerativePlugin, register_method

__all__ = ["FirstKConfig", "FirstKPlugin"]


@register_method("first-k", FirstKConfig)   # description, paper name and settings: methods/catalog.py
class FirstKPlugin(GenerativePlugin):
    def __init__(self, config: FirstKConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.memory: torch.Tensor | None = None

    def replay_images(self):
        return self.memory

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        """Append, keep rows [0:budget], train on the memory (plus what was cut off, if asked)."""
        before = 0 if self.memory is None else len(self.memory)
        if before < self.config.budget:
            joined = incoming if self.memory is None else torch.cat([self.memory, incoming])
            self.memory = joined[:self.config.budget]
        kept = len(self.memory) - before          # incoming images that made it into the memory
        if self.config.train_incoming and kept < len(incoming):
            return torch.cat([self.memory, incoming[kept:]])
        return self.memory
