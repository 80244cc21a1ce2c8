"""Memory Aware Synapses (Aljundi et al. 2018) through Avalanche's `MASPlugin`, with task boundaries.
The plugin's penalty and its importance update are kept: after each task, each weight's
importance is the mean over the task's minibatches of |d ||F(x)||^2 / dw| (mixed with the previous
importance: alpha * old + (1 - alpha) * new), and the loss gains `lambda_reg` * sum_i
importance_i (w_i - w*_i)^2 towards the weights after the previous task.

The adapter (docs/methods.md#mas): MAS measures the sensitivity of the learned function's
*output*; the plugin takes the model's forward as that output, a vector per image (a classifier's
logits), but the harness's forward is the per-image loss. For a VAE the function's output here is
its reconstruction: the decoder's pixel probabilities at the posterior mean of the binarized
task images (deterministic, label-free). Only `_get_importance` is replaced.
"""
from __future__ import annotations

import torch
from avalanche.training.plugins import MASPlugin
from avalanche.training.utils import zerolike_params_dict
from torch.utils.data import DataLoader

from methods.catalog import MASConfig
from methods.core import GenerativePlugin, register_method
from methods.core.helpers import binarized_dataset


class ReconstructionMAS(MASPlugin):
    """Avalanche's MAS with the reconstruction as the function's output (the rest is the plugin's)."""

    def __init__(self, lambda_reg: float, alpha: float, images: list, generator: torch.Generator):
        super().__init__(lambda_reg=lambda_reg, alpha=alpha)
        self.images, self.generator = images, generator   # the current task's images (set by the method)

    def _get_importance(self, strategy):
        model = strategy.model
        importance = dict(zerolike_params_dict(model))
        loader = DataLoader(binarized_dataset(self.images[0], self.generator), batch_size=strategy.train_mb_size)
        model.train()
        for x, _, _ in loader:
            strategy.optimizer.zero_grad()
            output = torch.sigmoid(model.decode(model.encode(x.flatten(1))[0]))   # pixel probabilities [B, D]
            torch.norm(output, p="fro", dim=1).pow(2).mean().backward()
            for name, param in model.named_parameters():
                if param.requires_grad and param.grad is not None:
                    importance[name].data += param.grad.abs()
        for value in importance.values():
            value.data /= float(len(loader))
        strategy.optimizer.zero_grad()
        return importance


@register_method("mas", MASConfig)   # description and settings: methods/catalog.py
class MASMethod(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: MASConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self._task: list = [None]
        self.mas = ReconstructionMAS(self.config.lambda_reg, self.config.alpha, self._task, self.generator)

    def before_backward(self, strategy, **kwargs):
        self.mas.before_backward(strategy, **kwargs)

    def update_memory(self, incoming, strategy=None) -> None:
        if strategy is None:
            return
        self._task[0] = incoming
        self.mas.generator = self.generator   # the plugin's generator (re-created on the device)
        self.mas.after_training_exp(strategy)
        self._task[0] = None

    def extra_stats(self) -> dict:
        return {"importance_sum": round(float(sum(p.data.sum() for p in self.mas.importance.values())), 6)} \
            if self.mas.importance else {}
