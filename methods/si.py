"""Synaptic Intelligence (Zenke et al. 2017) through Avalanche's `SynapticIntelligencePlugin`, with
task boundaries. The plugin's rule is kept whole: each weight's contribution to the loss's decrease
is integrated along its path during a task (-grad x step, per training step), turned into an
importance at the task's end (divided by the squared total change plus `eps`, Avalanche's clip of
0.001 on the change and c = 1), and the loss gains `si_lambda` * sum_i importance_i (w_i - w*_i)^2.
Every rule uses only the loss and the gradients, so the plugin runs on the harness's loss (the
per-image negative ELBO): its five hooks are forwarded (docs/methods.md#si). Trains `epochs`
passes per task (the profile's `task_epochs`), as LGM and joint.

One fix: Avalanche 0.6.0 stores the weights as `param.detach().cpu().flatten()`, which on a CPU is
a view of the parameter itself (on a GPU, `.cpu()` copies): the "old" weights then move with every
optimizer step, every path increment is 0 and every importance 0, so SI is fine-tuning on a CPU.
The hooks run with that one function copying (`copied_weights`), as it does on a GPU.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
from avalanche.training.plugins import SynapticIntelligencePlugin

from methods.catalog import SIConfig
from methods.core import GenerativePlugin, register_method


def _copying_extract_weights(model, target, excluded_parameters):
    for name, param in SynapticIntelligencePlugin.allowed_parameters(model, excluded_parameters):
        target[name].data = param.detach().cpu().flatten().clone()   # a copy on every device


@contextmanager
def copied_weights():
    """Avalanche's SI with its weights copied, not aliased (see the module doc), while the block runs."""
    original = SynapticIntelligencePlugin.extract_weights
    SynapticIntelligencePlugin.extract_weights = staticmethod(torch.no_grad()(_copying_extract_weights))
    try:
        yield
    finally:
        SynapticIntelligencePlugin.extract_weights = original


@register_method("si", SIConfig)   # description and settings: methods/catalog.py
class SIMethod(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: SIConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.si = SynapticIntelligencePlugin(self.config.si_lambda, eps=self.config.eps)

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        with copied_weights():
            self.si.before_training_exp(strategy, **kwargs)

    def before_training_iteration(self, strategy, **kwargs):
        with copied_weights():
            self.si.before_training_iteration(strategy, **kwargs)

    def before_backward(self, strategy, **kwargs):
        with copied_weights():
            self.si.before_backward(strategy, **kwargs)

    def after_training_iteration(self, strategy, **kwargs):
        with copied_weights():
            self.si.after_training_iteration(strategy, **kwargs)

    def after_training_exp(self, strategy, **kwargs):
        super().after_training_exp(strategy, **kwargs)
        with copied_weights():
            self.si.after_training_exp(strategy, **kwargs)

    def extra_stats(self) -> dict:
        importance = self.si.ewc_data[1]
        return {"importance_sum": round(float(sum(p.data.sum() for p in importance.values())), 6)} if importance else {}
