"""LGM: Lifelong Generative Modeling (Ramapuram et al.), as a plugin on the shared strategy.

At each task boundary the student is copied into a frozen teacher. Each training minibatch of 64
real images is joined by teacher samples so that they make up t/(t+1) of the batch (t = tasks
finished: 64 * t generated images), which approximates the uniform mixture of all tasks so far.
Loss = student ELBO on the whole batch + gamma * KL(q_student(z|x^) || q_teacher(z|x^)) on the
teacher-generated part x^ only (the consistency term), both per image and averaged over the batch.
Needs task boundaries: each task arrives as one experience, trained for the profile's
`task_epochs` passes (the budget of the other boundary-aware method, joint).

Left out: the paper's discrete latent variable and its growth with tasks; this is the continuous-
latent LGM on the same Bernoulli MLP VAE as every other method, so the comparison is like for like.
Stores no samples (memory 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from methods.core import GenerativePlugin, extend_minibatch, frozen_copy, register_method
from methods.models.gaussian import gaussian_kl
from streams.stream import binarize


@dataclass(frozen=True)
class LGMConfig:
    gamma: float = 1.0          # weight of the posterior-consistency term
    epochs: int | None = None   # passes per task; None: the profile's task_epochs


@register_method("lgm", LGMConfig, "Lifelong Generative Modeling: teacher replay + posterior consistency")
class LGMPlugin(GenerativePlugin):
    needs_task_boundaries = True

    def __init__(self, config: LGMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.teacher: torch.nn.Module | None = None
        self.tasks_done = 0
        self._generated = 0          # teacher samples in the current minibatch

    def train_epochs(self, profile) -> int:
        return self.config.epochs or profile.task_epochs

    def replay_count(self, real: int) -> int:
        """Teacher samples to add to `real` real images: a t/(t+1) share of the batch."""
        return real * self.tasks_done if self.teacher is not None else 0

    def before_forward(self, strategy, **kwargs):
        real = strategy.mbatch[0]
        n = self.replay_count(len(real))
        self._generated = n
        if n == 0:
            return
        extend_minibatch(strategy, binarize(self.teacher.sample(n, self.generator), self.generator))

    def consistency(self, student, generated: torch.Tensor) -> torch.Tensor:
        """Per-image KL(q_student(z|x^) || q_teacher(z|x^))."""
        with torch.no_grad():
            mu_t, std_t = self.teacher.encode(generated)
        mu_s, std_s = student.encode(generated)
        return gaussian_kl(mu_s, std_s, mu_t, std_t)

    def before_backward(self, strategy, **kwargs):
        if self._generated:
            x = strategy.mb_x
            kl = self.consistency(strategy.model, x[-self._generated:])
            strategy.loss = strategy.loss + self.config.gamma * kl.sum() / len(x)

    def update_memory(self, incoming: torch.Tensor, strategy=None) -> None:
        """At the task's end the student becomes the frozen teacher (LGM stores no images)."""
        self.teacher = frozen_copy(strategy.model)
        self.tasks_done += 1
