"""`python -m bench.perf`: measure the harness against its limits (ratios measured in one run).

1. Training-loop overhead: training steps per second of a method through our strategy + plugin
   (online batches of 64, Avalanche's loop and hooks, memory updates) vs a plain PyTorch loop doing
   the same number of steps on the same tensors (same minibatch size, MC samples, binarization,
   Adam, one thread). OCM's selections and expansion checks are timed on their own, per event,
   and excluded from its loop time.
Writes the table to reports/perf.md as well as stdout. Numbers vary between machines and runs;
the ratios, measured side by side and repeated (median), are what to read.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
from tabulate import tabulate

from bench.profiles import resolve_profile
from methods import get_method
from methods.ocm import OCMPlugin
from methods.strategy import GenerativeStrategy
from methods.vae import BernoulliVAE
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


def harness_run(method: str, images: torch.Tensor, profile, seed: int = 0):
    """(steps, seconds of training excluding selection events, event timer or None)."""
    spec = get_method(method)
    plugin = spec.plugin_class(spec.make_config(profile.methods.get(method), "mini"), seed=seed)
    torch.manual_seed(seed)
    model = plugin.build_model(profile)
    strategy = GenerativeStrategy(model=model, optimizer=torch.optim.Adam(model.parameters(), profile.lr,
                                  betas=profile.betas), train_epochs=profile.epochs,
                                  train_mb_size=profile.batch_size, plugins=[plugin], seed=seed)
    timer = EventTimer(plugin, "select") if isinstance(plugin, OCMPlugin) else None
    experiences = list(online_experiences(task_benchmark([images], [images[:1]]).train_stream[0]))
    start = time.perf_counter()
    for experience in experiences:
        strategy.train(experience)
    seconds = time.perf_counter() - start - (timer.seconds if timer else 0.0)
    return strategy.clock.train_iterations, seconds, timer


def plain_run(steps: int, images: torch.Tensor, profile, seed: int = 0) -> float:
    """Seconds for `steps` plain PyTorch training steps on minibatches of the same tensors."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = BernoulliVAE(mc_samples=profile.mc_samples)
    optimizer = torch.optim.Adam(model.parameters(), profile.lr, betas=profile.betas)
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randint(len(images), (profile.batch_size,), generator=generator)
        x = binarize(images[idx], generator)
        optimizer.zero_grad()
        loss = model(x).mean()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def training_overhead(methods, batches: int, repeats: int) -> list[list]:
    profile = resolve_profile("quick")
    stream = load_stream("mini")
    images = torch.cat([stream.train_images(t, 0) for t in range(len(stream.tasks))])[:batches * 64]
    rows = []
    for method in methods:
        ratios, per_step, events = [], [], None
        for r in range(repeats):
            steps, ours, timer = harness_run(method, images, profile, seed=r)
            plain = plain_run(steps, images, profile, seed=r)
            ratios.append(plain / ours)
            per_step.append((ours / steps * 1e3, plain / steps * 1e3))
            events = timer
        ours_ms, plain_ms = (statistics.median(v) for v in zip(*per_step))
        event = (f"{events.seconds / max(events.calls, 1) * 1e3:.1f} ms x {events.calls}"
                 if events else "-")
        rows.append([method, steps, f"{ours_ms:.2f}", f"{plain_ms:.2f}",
                     f"{statistics.median(ratios):.3f}", event])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="finetune,reservoir,ocm")
    p.add_argument("--batches", type=int, default=40, help="incoming batches of 64 per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="reports/perf.md")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    rows = training_overhead(args.methods.split(","), args.batches, args.repeats)
    table = tabulate(rows, headers=["method", "steps", "ours ms/step", "plain ms/step",
                                    "throughput ratio (>= 0.95 target)", "selection events"],
                     tablefmt="github", disable_numparse=True)
    text = (f"## Training-loop overhead (quick profile, mini stream, {args.batches} incoming batches, "
            f"median of {args.repeats})\n\n{table}\n")
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
