"""The runs bench.perf times, shared by its benchmarks (benchmarks.py) and the packing measurement
(packing.py): one method through the harness (`HarnessRun`), the same steps in a plain PyTorch
loop (`PlainRun`), and the images they train on (`mini_images`)."""
from __future__ import annotations

import time

import torch

from bench.evaluation.cell import training_optimizer
from bench.planning.grid import method_config
from methods import get_method
from methods.core.strategy import GenerativeStrategy
from methods.models.vae import BernoulliVAE
from methods.ocm import OCMPlugin
from streams.benchmark import online_experiences, task_benchmark
from streams.stream import binarize, load_stream


class EventTimer:
    """Wraps a plugin method, accumulating its wall time and call count."""

    def __init__(self, obj, name):
        self.seconds, self.calls, original = 0.0, 0, getattr(obj, name)

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start
                self.calls += 1
        setattr(obj, name, timed)


CPU = torch.device("cpu")


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall-clock timings are honest."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class HarnessRun:
    """One method through our strategy + plugin, an experience (online batch) at a time.

    Says the size of every minibatch it trained on, so that the plain loops can take the same
    steps: from the model's forward when the strategy ran eager (a method may add generated images
    to a minibatch, LGM and CURL do), else from the experience's minibatch plan (a captured step
    runs the model's forward hooks only when it is captured; fused steps train the plan as is)."""

    def __init__(self, method: str, images: torch.Tensor, profile, seed: int = 0,
                 device: torch.device = CPU, training_step: str = "auto"):
        spec = get_method(method)
        plugin = spec.plugin_class(spec.config_class(**method_config(spec, "mini", profile.methods.get(method))),
                                   seed=seed)
        torch.manual_seed(seed)
        model = plugin.build_model(profile).to(device)
        self.strategy = GenerativeStrategy(
            model=model, optimizer=training_optimizer(model, profile, device),
            train_epochs=profile.epochs, train_mb_size=profile.batch_size, plugins=[plugin],
            seed=seed, device=device, training_step=training_step)
        self.forward_sizes: list[int] = []
        model.register_forward_pre_hook(lambda _module, args: self.forward_sizes.append(len(args[0])))
        self.timer = EventTimer(plugin, "select") if isinstance(plugin, OCMPlugin) else None
        self.loader = None   # the experience's minibatch plan (the strategy drops it after training)
        make_loader = self.strategy.make_train_dataloader

        def keep_loader(**kwargs):
            make_loader(**kwargs)
            self.loader = self.strategy.dataloader

        self.strategy.make_train_dataloader = keep_loader
        self.experiences = list(online_experiences(task_benchmark([images], [images[:1]]).train_stream[0]))
        self.device = device

    def train(self, experience) -> tuple[list[int], float]:
        """(minibatch sizes, seconds) of training on one experience, selection events excluded.
        The sizes are read from the experience's minibatch plan (a captured step runs the model's
        forward hooks only when it is captured)."""
        events = self.timer.seconds if self.timer else 0.0
        first = len(self.forward_sizes)
        synchronize(self.device)
        start = time.perf_counter()
        self.strategy.train(experience)
        synchronize(self.device)
        seconds = time.perf_counter() - start - ((self.timer.seconds - events) if self.timer else 0.0)
        if self.strategy.training_step == "eager":
            return self.forward_sizes[first:], seconds
        return self.loader.batch_sizes() * self.strategy.train_epochs, seconds


class PlainRun:
    """The same training steps in a plain PyTorch loop: a random minibatch of the same size from
    the same images, freshly binarized; the same model, loss, optimizer and device."""

    def __init__(self, images: torch.Tensor, profile, seed: int = 0, device: torch.device = CPU):
        torch.manual_seed(seed)
        self.generator = torch.Generator(device).manual_seed(seed)
        self.images = images.to(device)
        self.model = BernoulliVAE(mc_samples=profile.mc_samples).to(device)
        self.optimizer = training_optimizer(self.model, profile, device)
        self.device = device
        self.steps = 0   # optimizer steps taken

    def train(self, batch_sizes: list[int]) -> float:
        synchronize(self.device)
        start = time.perf_counter()
        for size in batch_sizes:
            idx = torch.randint(len(self.images), (size,), generator=self.generator, device=self.device)
            x = binarize(self.images[idx], self.generator)
            self.optimizer.zero_grad()
            loss = self.model(x).mean()
            loss.backward()
            self.optimizer.step()
            self.steps += 1
        synchronize(self.device)
        return time.perf_counter() - start


def mini_images(batches: int) -> torch.Tensor:
    """The first `batches` x 64 training images of `mini` (seed 0's order)."""
    stream = load_stream("mini")
    return torch.cat([stream.train_images(t, 0) for t in range(len(stream.tasks))])[:batches * 64]
