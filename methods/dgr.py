"""Deep generative replay (Shin et al. 2017; for generative models, Lesort et al. 2019) through
Avalanche's `GenerativeReplayPlugin`, the model being its own generator: each minibatch of a task
is joined by as many images (`replay_size`) drawn from a frozen copy of the model taken when the
task began, from the second task on.

The adapter (docs/methods.md#dgr): the plugin asks its generator for `generate(n)`; here that is
the frozen copy's samples (z ~ N(0, I), decoder probabilities binarized with the method's
generator, the shape of the minibatch's images), and the frozen copy is the harness's
`frozen_copy` taken in `before_training_exp` (the plugin deep-copies its generator object, which
here holds a torch.Generator). The joining itself, the plugin's `before_training_iteration`, is
used as it is. `dgr` needs task boundaries (the copy is taken at each); `dgr-taskfree` takes it
every `refresh_images` incoming images instead (one task's length by default, as CURL's
snapshot), so a task-free form is possible: what it replays is the model as it was one period
ago. How it differs from LGM: LGM also distils the posterior on the replayed images and mixes
real and replayed images t : 1 within a fixed batch; DGR joins B replayed images to B real ones.
"""
from __future__ import annotations

import torch
from avalanche.training.plugins import GenerativeReplayPlugin

from methods.catalog import DGRConfig
from methods.core import GenerativePlugin, frozen_copy, register_method
from methods.core.task_length import require_count


class SampleGenerator:
    """A model as the plugin's generator: `generate(n)` = n binarized samples [n, C, H, W]."""

    def __init__(self, model, shape: tuple, generator: torch.Generator):
        self.model, self.shape, self.generator = model, shape, generator

    @torch.no_grad()
    def generate(self, n: int) -> torch.Tensor:
        probabilities = self.model.sample(n, self.generator).view(n, *self.shape)
        return torch.bernoulli(probabilities, generator=self.generator)

    def to(self, device):   # the plugin moves what `generate` returns: already on the model's device
        return self


class FrozenCopyReplay(GenerativeReplayPlugin):
    """Avalanche's generative replay with the snapshot taken by the method; the model is its own
    generator (mock labels)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.model_is_generator = True

    def before_training(self, strategy, *args, **kwargs):
        """The generator is the method's frozen copy, set by `snapshot`."""

    def before_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True, **kwargs):
        """The method takes the snapshot (`snapshot`)."""

    def after_training_exp(self, strategy, num_workers: int = 0, shuffle: bool = True, **kwargs):
        """Replay starts once the method has taken a snapshot."""


@register_method("dgr", DGRConfig)   # description and settings: methods/catalog.py
class DGRMethod(GenerativePlugin):
    needs_task_boundaries = True
    trains_whole_tasks = True

    def __init__(self, config: DGRConfig | None = None, seed: int = 0):
        super().__init__(config, seed)
        self.replay = FrozenCopyReplay(replay_size=self.config.replay_size)
        self.snapshots = 0

    def snapshot(self, model) -> None:
        """Freeze the model as it is now: the generator of what is replayed from here on."""
        self.replay.old_generator = SampleGenerator(frozen_copy(model), self.image_shape, self.generator)
        self.replay.untrained_solver = False
        self.snapshots += 1

    def before_training(self, strategy, **kwargs):
        self.replay.before_training(strategy, **kwargs)

    def before_training_exp(self, strategy, **kwargs):
        super().before_training_exp(strategy, **kwargs)
        if strategy.clock.train_exp_counter > 0:   # from the second task on: the model after the last one
            self.snapshot(strategy.model)

    def before_training_iteration(self, strategy, **kwargs):
        if not self.replay.untrained_solver:   # the strategy counts the joined images as trained on
            self.replay.before_training_iteration(strategy, **kwargs)

    def extra_stats(self) -> dict:
        return {"snapshots": self.snapshots}


@register_method("dgr-taskfree", DGRConfig)
class DGRTaskFreeMethod(DGRMethod):
    needs_task_boundaries = False
    trains_whole_tasks = False

    def before_training_exp(self, strategy, **kwargs):
        GenerativePlugin.before_training_exp(self, strategy, **kwargs)

    def update_memory(self, incoming, strategy=None) -> None:
        """A new snapshot each time the stream passes another `refresh_images` images."""
        if strategy is not None and self.stream_position // require_count(self.config, "refresh_images") > self.snapshots:
            self.snapshot(strategy.model)
