"""LwF for a VAE (Li & Hoiem 2017's distillation, adapted): while learning task t, the model is
also pulled towards the frozen model of the end of task t-1 *on the incoming data itself*: the
loss gains `alpha` x [ KL(q_new(z|x) || q_old(z|x)) + the cross-entropy of the new reconstruction
against the old one at the posterior mean ], per image, averaged.

Avalanche's `LwFPlugin` distils a classifier's logits at a temperature; a VAE has no logits, so the
rule here is ours (docs/methods.md#lwf), with the plugin's structure: a frozen copy of the
previous model, a distillation term on the current minibatch, `alpha` its weight (Avalanche's
default 1). How it differs from LGM: LGM distils the posterior on images the frozen teacher
*generates* and trains on them (a replay); LwF replays nothing and distils on the new task's
images only, so what it keeps of an old task is what the new images reveal of the old model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from methods.catalog import LwFConfig
from methods.core import GenerativePlugin, frozen_copy, register_method
from methods.models.gaussian import gaussian_kl


def distillation(model, teacher, x: torch.Tensor) -> torch.Tensor:
    """Per image: KL(q_model(z|x) || q_teacher(z|x)) + the cross-entropy (nats, summed over pixels)
    of the model's reconstruction at its posterior mean against the teacher's probabilities."""
    x = x.flatten(1)
    mu, std = model.encode(x)
    with torch.no_grad():
        t_mu, t_std = teacher.encode(x)
        target = torch.sigmoid(teacher.decode(t_mu))
    kl = gaussian_kl(mu, std, t_mu, t_std)
    reconstruction = F.binary_cross_entropy_with_logits(model.decode(mu), target, reduction="none").sum(-1)
    return kl + reconstruction


@register_method("lwf", LwFConfig)   # description and settings: methods/catalog.py
class LwFMethod(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: LwFConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.teacher = None
        self.last_distillation: float | None = None

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        if strategy.clock.train_exp_counter > 0:
            self.teacher = frozen_copy(strategy.model)

    def before_backward(self, strategy, **kwargs):
        if self.teacher is None or self.config.alpha == 0:
            return
        term = distillation(strategy.model, self.teacher, strategy.mb_x).mean()
        strategy.loss = strategy.loss + self.config.alpha * term
        self.last_distillation = float(term.detach())

    def extra_stats(self) -> dict:
        return {"last_distillation": self.last_distillation}
