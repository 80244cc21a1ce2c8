"""LGM: Lifelong Generative Modeling (Ramapuram et al.), as its authors' code runs it.

At each task boundary the student is copied into a frozen teacher. From the second task on, each
training minibatch of B images is a mix (jramapuram/LifelongVAE_pytorch, main.py and
models/student_teacher.py, `generate_synthetic_samples` and the merge in the student-teacher
forward): with t = tasks finished, the teacher contributes int(B * t/(t+1)) samples and the real
part is cut to the first max(B - that, 1) images of the minibatch, so that the batch approximates
the uniform mixture of all tasks so far at a constant size. The teacher's samples are its
decoder's means (pixel probabilities, z ~ N(0, I)), not binary draws. Loss = student ELBO on the
whole batch + gamma * KL(q_student(z|x^) || q_teacher(z|x^)) on the teacher-generated part x^ only
(the consistency term), per image and averaged over the batch. Needs task boundaries: each task
arrives as one experience, trained for the profile's `task_epochs` passes (the budget of the other
boundary-aware method, joint).

`mix="append"` is the harness's earlier form, kept for comparison: every real image stays and
64 * t binarized teacher samples are appended (the batch grows with t; about t+1 times the
compute of the authors' form).

At each fork the authors build a new optimizer (main.py:470-475): here the Adam state is reset
at each task boundary (`fresh_optimizer`), with the profile's learning rate and betas.

Left out (docs/methods.md#lgm has the table with the authors' file and line): the paper's discrete
latent variable and its growth with tasks (their headline runs regularise only that categorical
latent); this is the continuous-latent LGM on the same Bernoulli MLP VAE as every other method, so
the comparison is like for like, with the exact Gaussian KL (their Gaussian path passes a
log-variance where `Normal` expects a scale). Stores no samples (memory 0).
"""
from __future__ import annotations

import torch

from methods.catalog import LGMConfig
from methods.core import GenerativePlugin, extend_minibatch, frozen_copy, register_method
from methods.models.gaussian import gaussian_kl
from streams.stream import binarize


def batch_split(batch: int, tasks_done: int) -> tuple[int, int]:
    """(real, teacher) images in a minibatch of `batch` after `tasks_done` tasks: the authors'
    int(batch * t/(t+1)) teacher samples and max(batch - that, 1) real ones."""
    teacher = int(batch * tasks_done / (tasks_done + 1))
    return max(batch - teacher, 1), teacher


@register_method("lgm", LGMConfig)   # description and settings: methods/catalog.py
class LGMPlugin(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: LGMConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.teacher: torch.nn.Module | None = None
        self.tasks_done = 0
        self._generated = 0          # teacher samples in the current minibatch


    def before_forward(self, strategy, **kwargs):
        self._generated = 0
        if self.teacher is None:
            return
        batch = len(strategy.mbatch[0])
        if self.config.mix == "split":
            real, generated = batch_split(batch, self.tasks_done)
            strategy.mbatch = [t[:real] for t in strategy.mbatch]
            samples = self.teacher.sample(generated, self.generator)       # decoder means
        else:
            generated = batch * self.tasks_done
            samples = binarize(self.teacher.sample(generated, self.generator), self.generator)
        if generated:
            extend_minibatch(strategy, samples)
        self._generated = generated

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
        if self.config.fresh_optimizer and hasattr(strategy, "make_optimizer"):
            strategy.make_optimizer(reset_optimizer_state=True)
