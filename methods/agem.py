"""A-GEM (Chaudhry et al. 2019), task-free, through Avalanche's `AGEMPlugin`. The plugin's rule is
kept: before each step, a reference gradient g_ref of the loss on `sample_size` memory images;
after the backward pass, if the step's gradient g has g . g_ref < 0 it is projected to
g - (g . g_ref / g_ref . g_ref) g_ref, so that (to first order) the memory's loss does not rise.

The adapter (docs/methods.md#agem): the plugin keeps `patterns_per_experience` images of every
experience and samples them class-balanced by experience; on a task-free stream an experience is
one online batch, so its memory would grow without bound. Here the memory is a reservoir of
`budget` images (Vitter's, as `reservoir`: the online A-GEM of the surveys), and the reference
minibatch a uniform draw of `sample_size` of them, binarized afresh; only the plugin's memory
methods are replaced. Each incoming batch trains E passes on itself alone (the memory is not
trained on: it only constrains the gradient).
"""
from __future__ import annotations

import torch
from avalanche.training.plugins import AGEMPlugin

from methods.catalog import AGEMConfig
from methods.core import register_method
from methods.reservoir import ReservoirPlugin


class ReservoirAGEM(AGEMPlugin):
    """Avalanche's A-GEM with its memory a reservoir owned by the method."""

    def __init__(self, method: AGEMMethod, sample_size: int):
        super().__init__(patterns_per_experience=1, sample_size=sample_size)
        self.method = method

    def before_training_iteration(self, strategy, **kwargs):
        self.buffers = [True] if self.method.filled else []   # the plugin projects once there is a memory
        super().before_training_iteration(strategy, **kwargs)

    def sample_from_memory(self):
        memory = self.method.replay_images()
        pick = torch.randint(len(memory), (min(self.sample_size, len(memory)),), generator=self.method.generator,
                             device=memory.device)
        x = torch.bernoulli(memory[pick], generator=self.method.generator)
        zeros = torch.zeros(len(x), dtype=torch.long, device=x.device)
        return x, zeros, zeros


@register_method("agem", AGEMConfig)   # description and settings: methods/catalog.py
class AGEMMethod(ReservoirPlugin):
    def __init__(self, config: AGEMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.agem = ReservoirAGEM(self, self.config.sample_size)
        self.projections = 0   # steps whose gradient was projected

    def training_images(self, incoming: torch.Tensor) -> torch.Tensor:
        return incoming   # the memory constrains the gradient; it is not trained on

    def before_training_iteration(self, strategy, **kwargs):
        self.agem.before_training_iteration(strategy, **kwargs)

    def after_backward(self, strategy, **kwargs):
        if self.agem.buffers:
            with torch.no_grad():   # counted as the plugin decides: g . g_ref < 0
                g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).view(-1)
                               for p in strategy.model.parameters()])
                self.projections += int(torch.dot(g, self.agem.reference_gradients) < 0)
            self.agem.after_backward(strategy, **kwargs)

    def extra_stats(self) -> dict:
        return {"projections": self.projections}
