"""Online EWC (Kirkpatrick et al. 2017; the online form of Schwarz et al. 2018) through Avalanche's
`EWCPlugin`, with task boundaries. The plugin's rule is kept: after each task, each weight's
importance is the mean over the task's minibatches of its squared gradient (Avalanche's
empirical Fisher), added to the previous importance times `decay_factor`; while training, the
loss gains `ewc_lambda` * sum_i F_i (w_i - w*_i)^2 towards the weights after the previous task.

The adapter (docs/methods.md#ewc): the importance pass runs on the task's images binarized once
with the method's generator (the plugin would read the grey images of `experience.dataset`), with
the harness's loss (the per-image negative ELBO, averaged); the penalty is the plugin's own
`before_backward`. Trains `epochs` passes per task (the profile's `task_epochs`), as LGM and joint.
"""
from __future__ import annotations

from avalanche.training.plugins import EWCPlugin
from avalanche.training.utils import copy_params_dict

from methods.catalog import EWCConfig
from methods.core import GenerativePlugin, register_method
from methods.core.helpers import binarized_dataset


@register_method("ewc", EWCConfig)   # description and settings: methods/catalog.py
class EWCMethod(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: EWCConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.ewc = EWCPlugin(self.config.ewc_lambda, mode="online", decay_factor=self.config.decay_factor)

    def before_backward(self, strategy, **kwargs):
        self.ewc.before_backward(strategy)   # + lambda * sum F (w - w*)^2, from the second task on

    def update_memory(self, incoming, strategy=None) -> None:
        """After the task: its importances (Avalanche's `compute_importances` on the binarized
        task, the harness's loss), accumulated online, and the weights they anchor."""
        if strategy is None:
            return
        task = strategy.clock.train_exp_counter
        importances = self.ewc.compute_importances(
            strategy.model, strategy._criterion, strategy.optimizer, binarized_dataset(incoming, self.generator),
            strategy.device, strategy.train_mb_size)
        self.ewc.update_importances(importances, task)
        self.ewc.saved_params[task] = copy_params_dict(strategy.model)
        if task > 0:
            del self.ewc.saved_params[task - 1]
        strategy.optimizer.zero_grad()

    def extra_stats(self) -> dict:
        if not self.ewc.importances:
            return {}
        latest = self.ewc.importances[max(self.ewc.importances)]
        return {"importance_sum": round(float(sum(p.data.sum() for p in latest.values())), 6)}
