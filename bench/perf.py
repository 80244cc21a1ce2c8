"""`python -m bench.perf`: measure the harness against its limits (ratios measured in one run).

1. Training-loop overhead: training steps per second of a method through our strategy + plugin
   (online batches of 64, Avalanche's loop and hooks, memory updates) vs a plain PyTorch loop doing
   the same number of steps on the same tensors (same minibatch size, MC samples, binarization,
   Adam, one thread). OCM's selections are timed on their own, per event, and excluded.
2. Evaluation efficiency: the IWAE evaluator's achieved GFLOP/s (encoder and decoder matmul FLOPs)
   as a fraction of this machine's fp32 matmul peak, measured in the same run (one thread).
3. Grid scaling: wall time of the same 8-cell smoke grid with 1 and 2 local workers.
4. Cost growth: time and peak memory of one `ocm` and one `ocm-dynamic` cell as the stream grows
   (1x, 2x, 4x batches), each in a fresh process.
Writes the tables to reports/perf.md as well as stdout. Numbers vary between machines and runs;
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


def matmul_peak_gflops(n: int = 1536, repeats: int = 5) -> float:
    """Best-of-`repeats` fp32 GFLOP/s of one n x n matmul on one thread."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def vae_iwae_flops(model: BernoulliVAE, images: int, k: int) -> float:
    """Matmul FLOPs of an IWAE pass: the encoder once per image, the decoder once per sample."""
    layers = lambda mods: sum(m.in_features * m.out_features for m in mods)
    comp = model.components[0]
    encoder = layers([model.encoder_shared, comp.encoder_hidden, comp.encoder_mu, comp.encoder_log_sigma])
    decoder = layers([model.decoder_shared, comp.decoder_hidden, comp.decoder_out])
    return 2.0 * (images * encoder + images * k * decoder)


def evaluation_efficiency(images: int = 200, k: int = 1000, repeats: int = 3) -> list[list]:
    from methods.likelihood import component_log_likelihoods

    model = BernoulliVAE()
    x = torch.bernoulli(torch.rand(images, 784), generator=torch.Generator().manual_seed(0))
    component_log_likelihoods(model, x[:10], 10)
    seconds = min(_timed(lambda: component_log_likelihoods(model, x, k, torch.Generator().manual_seed(0)))
                  for _ in range(repeats))
    achieved = vae_iwae_flops(model, images, k) / seconds / 1e9
    peak = matmul_peak_gflops()
    return [[f"{images} images x K={k}", f"{seconds * 1e3 / images:.2f}", f"{achieved:.1f}",
             f"{peak:.1f}", f"{achieved / peak:.2f}"]]


def grid_scaling(cells: int = 8) -> list[list]:
    """The same smoke grid (8 reservoir cells on mini, seeds 0-7) with 1 and 2 workers."""
    import tempfile

    from bench.cell import cached_stream
    from bench.executor import run_cells
    from bench.grid import expand_grid
    from bench.store import ResultStore

    grid = expand_grid(["reservoir"], ["mini"], list(range(cells)), resolve_profile("smoke"))
    cached_stream("mini", None)
    times = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as out:
            times[workers] = _timed(lambda out=out, workers=workers: run_cells(
                grid, ResultStore(out), workers, progress=False))
    return [[f"{cells} smoke cells", f"{times[1]:.1f}", f"{times[2]:.1f}", f"{times[1] / times[2]:.2f}"]]


def _growth_child(method: str, per_task: int, queue) -> None:
    import resource

    from bench.cell import train_and_evaluate
    from bench.grid import expand_grid

    profile = resolve_profile("quick", [f"max_train_per_task={per_task}", "eval_test_per_task=1",
                                        "eval_k=1", "fid_features=none", "sample_grids=false"])
    cell = expand_grid([method], ["mini"], [0], profile)[0]
    record = train_and_evaluate(cell)
    queue.put((record["train_seconds"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               record["iterations"], record.get("ltm_size"), record["components"]))


def cost_growth(methods=("ocm", "ocm-dynamic"), base_per_task: int = 160) -> list[list]:
    import multiprocessing

    rows = []
    context = multiprocessing.get_context("fork")
    for method in methods:
        first = None
        for factor in (1, 2, 4):
            queue = context.Queue()
            child = context.Process(target=_growth_child, args=(method, base_per_task * factor, queue))
            child.start()
            seconds, peak_mb, steps, ltm, components = queue.get()
            child.join()
            first = first or seconds
            rows.append([method, f"{factor}x ({5 * base_per_task * factor // 64} batches)",
                         f"{seconds:.1f}", f"{seconds / first:.2f}", f"{steps}",
                         f"{seconds / steps * 1e3:.2f}", f"{peak_mb:.0f}", f"{ltm}", f"{components}"])
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.perf", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default="finetune,reservoir,ocm")
    p.add_argument("--batches", type=int, default=40, help="incoming batches of 64 per run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default="reports/perf.md")
    p.add_argument("--only", default="overhead,evaluation,scaling,growth",
                   help="which parts to run (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    parts, sections = args.only.split(","), []
    if "overhead" in parts:
        rows = training_overhead(args.methods.split(","), args.batches, args.repeats)
        table = tabulate(rows, headers=["method", "steps", "ours ms/step", "plain ms/step",
                                        "throughput ratio (target >= 0.95)", "selection events"],
                         tablefmt="github", disable_numparse=True)
        sections.append(f"## 1. Training-loop overhead (quick profile, mini, {args.batches} incoming "
                        f"batches, median of {args.repeats})\n\n{table}\n")
    if "evaluation" in parts:
        table = tabulate(evaluation_efficiency(), headers=["IWAE pass", "ms/image", "GFLOP/s",
                         "matmul peak GFLOP/s", "fraction of peak (target >= 0.5)"],
                         tablefmt="github", disable_numparse=True)
        sections.append(f"## 2. Evaluation efficiency (one thread)\n\n{table}\n")
    if "scaling" in parts:
        table = tabulate(grid_scaling(), headers=["grid", "1 worker s", "2 workers s",
                         "speed-up (target >= 1.8)"], tablefmt="github", disable_numparse=True)
        sections.append(f"## 3. Grid scaling (local process pool)\n\n{table}\n")
    if "growth" in parts:
        table = tabulate(cost_growth(), headers=["method", "stream", "train s", "x of 1x", "steps",
                         "ms/step", "peak RSS MB", "LTM", "components"], tablefmt="github",
                         disable_numparse=True)
        sections.append("## 4. Cost growth with stream length (quick profile on mini, 160/320/640 "
                        f"images per task)\n\n{table}\n")
    text = "# bench.perf\n\n" + "\n".join(sections)
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
