"""`python -m bench.perf`: measure the harness against its limits (ratios measured in one run).

1. Training-loop overhead: training throughput of a method through our strategy + plugin (online
   batches of 64, Avalanche's loop and hooks, memory updates) vs a plain PyTorch loop doing the
   same steps (the same minibatch sizes, MC samples, binarization, Adam, one thread) on the same
   tensors, the two interleaved experience by experience. OCM's selections are timed on their own,
   per event, and excluded.
2. Evaluation efficiency: the IWAE evaluator's achieved GFLOP/s (encoder and decoder matmul FLOPs)
   as a fraction of this machine's fp32 matmul peak (the best square matmul), measured in the same
   run (one thread); on a CPU with the C kernel and with the torch form, interleaved.
3. Grid scaling: wall time of the same 8-cell smoke grid with 1 and 2 local workers, in a fresh
   process, with the speed-up split into the machine's share and the executor's.
4. Cost growth: time and peak memory of one `ocm` and one `ocm-dynamic` cell as the stream grows
   (1x, 2x, 4x batches), each in a fresh process.
Writes the tables to reports/perf.md as well as stdout. Numbers vary between machines and runs;
the ratios, measured side by side and repeated (median), are what to read.
`--device cuda --profile paper` measures parts 1 and 2 on a GPU (paper settings: 50 MC samples),
written to reports/perf-cuda.md; the evaluator is then also timed at several chunk sizes.
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import NamedTuple

import torch
from tabulate import tabulate

from bench.evaluation.allocator import keep_freed_memory
from bench.perf.independent import IndependentRun
from bench.perf.packing import packing_rows
from bench.perf.runs import CPU, HarnessRun, PlainRun, mini_images, synchronize
from bench.planning.profiles import resolve_profile
from methods.models.vae import BernoulliVAE

MIN_SECONDS = 20.0   # least wall time spent on the pairs of one overhead measurement


class OverheadPair(NamedTuple):
    steps: int                  # the harness's steps (minibatches), which the other loops repeat
    ours: float                 # seconds: the harness
    plain: float                # a plain PyTorch loop
    independent: float          # the independent implementation (bench/perf/independent.py)
    timer: object               # OCM's selections, timed on their own (None for other methods)
    steps_taken: dict           # {loop: optimizer steps it took}: the same for the three


def overhead_pair(method: str, images: torch.Tensor, profile, seed: int, device: torch.device) -> OverheadPair:
    """The three loops' seconds on the same steps, interleaved per experience (the independent one:
    bench/perf/independent.py), and the steps each took.

    The machine's speed drifts by 10-20% over seconds (a shared host), so two whole runs one after
    the other disagree by that much; alternating every experience (1-10 steps, tens of ms) exposes
    both loops to the same drift."""
    ours, plain = HarnessRun(method, images, profile, seed, device), PlainRun(images, profile, seed, device)
    independent = IndependentRun(images, profile, seed, device)
    steps, ours_seconds, plain_seconds, independent_seconds = 0, 0.0, 0.0, 0.0
    for experience in ours.experiences:
        sizes, seconds = ours.train(experience)
        ours_seconds += seconds
        plain_seconds += plain.train(sizes)
        independent_seconds += independent.train(sizes)
        steps += len(sizes)
    taken = {"harness": ours.strategy.clock.train_iterations, "plain": plain.steps,
             "independent": len(independent.losses)}
    return OverheadPair(steps, ours_seconds, plain_seconds, independent_seconds, ours.timer, taken)


def training_overhead(methods, batches: int, repeats: int, profile_name: str = "quick",
                      device: torch.device = CPU) -> list[list]:
    profile = resolve_profile(profile_name)
    images = mini_images(batches)
    rows = []
    for method in methods:
        ratios, independent_ratios, per_step, events = [], [], [], None
        r, started = 0, time.perf_counter()
        # At least `repeats` runs, and at least MIN_SECONDS of them: a finetune run is 40 steps
        # (half a second), too short for one run to say much on a noisy machine.
        while r < repeats or time.perf_counter() - started < MIN_SECONDS:
            steps, ours, plain, independent, events, _ = overhead_pair(method, images, profile, r, device)
            per_step.append((ours / steps * 1e3, plain / steps * 1e3, independent / steps * 1e3))
            ratios.append(plain / ours)
            independent_ratios.append(independent / ours)
            r += 1
        ours_ms, plain_ms, independent_ms = (statistics.median(v) for v in zip(*per_step))
        event = (f"{events.seconds / max(events.calls, 1) * 1e3:.1f} ms x {events.calls}"
                 if events else "-")
        rows.append([method, steps, f"{ours_ms:.2f}", f"{plain_ms:.2f}",
                     f"{statistics.median(ratios):.3f} (median of {len(ratios)} runs)", f"{independent_ms:.2f}",
                     f"{statistics.median(independent_ratios):.3f}", event])
    return rows


def training_steps(methods, batches: int, profile_name: str, device: torch.device, modes) -> list[list]:
    """ms per training step of each step mode (methods/core/static_step.py), the modes' runs of
    one method interleaved experience by experience (against drift); each run's first experience
    (capture, compilation) is left out."""
    profile = resolve_profile(profile_name)
    images = mini_images(batches)
    rows = []
    for method in methods:
        runs = {mode: HarnessRun(method, images, profile, 0, device, training_step=mode) for mode in modes}
        totals = {mode: [0, 0.0] for mode in modes}
        for i, experience in enumerate(runs[modes[0]].experiences):
            for mode, run in runs.items():
                sizes, seconds = run.train(experience)
                if i > 0:
                    totals[mode][0] += len(sizes)
                    totals[mode][1] += seconds
        eager_ms = totals["eager"][1] / totals["eager"][0] * 1e3
        for mode in modes:
            steps, seconds = totals[mode]
            ms = seconds / steps * 1e3
            resolved = runs[mode].strategy.training_step
            rows.append([method, mode if resolved == mode else f"{mode} (ran {resolved})", steps,
                         f"{ms:.3f}", f"{eager_ms / ms:.2f}"])
    return rows


# Square sizes whose best GFLOP/s is the machine's fp32 matmul peak. On this CPU the small,
# cache-resident products run fastest (about 75 GFLOP/s at 256 against 55-70 at 1536, whose
# operands go through the L3 cache that the host shares), so one large size understates it.
PEAK_SIZES_CPU = (256, 512, 1024, 1536)
PEAK_SIZES_GPU = (8192,)


def matmul_gflops(n: int, repeats: int = 3, device: torch.device = CPU) -> float:
    """Best-of-`repeats` fp32 GFLOP/s of an n x n matmul (one CPU thread, or the GPU; no TF32)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = min(_timed(lambda: a @ b, device) for _ in range(repeats))
    return 2 * n ** 3 / best / 1e9


def matmul_peaks(device: torch.device = CPU) -> dict[int, float]:
    """GFLOP/s per square size; the peak is the best of them."""
    sizes = PEAK_SIZES_GPU if device.type == "cuda" else PEAK_SIZES_CPU
    return {n: matmul_gflops(n, device=device) for n in sizes}


def _timed(fn, device: torch.device = CPU) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def vae_iwae_flops(model: BernoulliVAE, images: int, k: int) -> float:
    """Matmul FLOPs of an IWAE pass: the encoder once per image, the decoder once per sample."""
    def layers(mods):
        return sum(m.in_features * m.out_features for m in mods)
    comp = model.components[0]
    encoder = layers([model.encoder_shared, comp.encoder_hidden, comp.encoder_mu, comp.encoder_log_sigma])
    decoder = layers([model.decoder_shared, comp.decoder_hidden, comp.decoder_out])
    return 2.0 * (images * encoder + images * k * decoder)


def evaluation_variants(device: torch.device, chunk_rows) -> list[tuple[str, int | None, object]]:
    """(decoder form, rows per chunk, context) to time: on a CPU the C kernel and the torch form
    (methods/models/native/decoder.py), on a GPU the direct form at each chunk size."""
    import contextlib

    from methods.models.native import decoder as decoder_inference
    from methods.models.native import kernel as native_kernel

    variants = [(decoder_inference.form(device), rows, contextlib.nullcontext) for rows in chunk_rows]
    if device.type == "cpu" and native_kernel.available():
        with native_kernel.turned_off():
            torch_form = decoder_inference.form(device)
        variants += [(torch_form, rows, native_kernel.turned_off) for rows in chunk_rows]
    return variants


def evaluation_efficiency(images: int | None = None, k: int = 1000, repeats: int = 5,
                          device: torch.device = CPU,
                          chunk_rows: tuple[int | None, ...] = (None,)) -> list[list]:
    """The IWAE evaluator for each variant (`evaluation_variants`), interleaved within each repeat.

    The machine's speed drifts (shared cores, clocks), so each evaluator pass is paired with a
    peak measurement taken right before it, and the fraction is the median over the pairs."""
    from methods.models.likelihood import component_log_likelihoods, default_max_rows

    images = images or (2000 if device.type == "cuda" else 200)
    model = BernoulliVAE().to(device)
    x = torch.bernoulli(torch.rand(images, 784), generator=torch.Generator().manual_seed(0)).to(device)
    flops = vae_iwae_flops(model, images, k)
    variants = evaluation_variants(device, chunk_rows)
    runs = [lambda max_rows=max_rows: component_log_likelihoods(
        model, x, k, torch.Generator(device).manual_seed(0), max_rows) for _, max_rows, _ in variants]
    pairs = {i: [] for i in range(len(variants))}
    for repeat in range(repeats + 1):     # the first round warms up
        for i, ((_, _, context), run) in enumerate(zip(variants, runs)):
            with context():
                peaks = matmul_peaks(device)
                seconds = _timed(run, device)
            if repeat:
                pairs[i].append((peaks, seconds))
    rows = []
    for (form, max_rows, _), measured in zip(variants, pairs.values()):
        seconds = statistics.median(t for _, t in measured)
        peak = statistics.median(max(p.values()) for p, _ in measured)
        fraction = statistics.median(flops / t / 1e9 / max(p.values()) for p, t in measured)
        of_1536 = (f"{statistics.median(flops / t / 1e9 / p[1536] for p, t in measured):.2f}"
                   if 1536 in measured[0][0] else "-")
        rows.append([f"{images} images x K={k}", form, f"{max_rows or default_max_rows(device)}",
                     f"{seconds * 1e3 / images:.3f}", f"{flops / seconds / 1e9:.1f}", f"{peak:.1f}",
                     f"{fraction:.2f}", of_1536])
    return rows


def _scaling_child(cells: int, repeats: int, queue) -> None:
    """Times the smoke grid with 1 and 2 workers, alternating the order against drift."""
    import tempfile

    from bench.evaluation.caches import cached_stream
    from bench.execution import CommonOptions
    from bench.execution.executor import run_cells
    from bench.execution.store import ResultStore
    from bench.planning.grid import expand_grid

    torch.set_num_threads(1)
    keep_freed_memory()
    grid = expand_grid(["reservoir"], ["mini"], list(range(cells)), resolve_profile("smoke"))
    cached_stream("mini", None)
    times, cell_seconds = {1: [], 2: []}, {1: [], 2: []}
    for r in range(repeats):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            with tempfile.TemporaryDirectory() as out:
                times[workers].append(_timed(lambda out=out, workers=workers: run_cells(
                    grid, ResultStore(out), "local", CommonOptions(workers=workers), progress=False)))
                cell_seconds[workers].append(sum(record.wall_seconds for record in ResultStore(out).records()))
    queue.put((times, cell_seconds))


def grid_scaling(cells: int = 8, repeats: int = 7) -> list[list]:
    """The same smoke grid (8 reservoir cells on mini, seeds 0-7) with 1 and 2 workers.

    Measured in a fresh process, as `python -m bench.run` starts one: forking this one after the
    other parts (about 1 GB resident) would charge the workers for copying its page tables.
    speed-up = 2 x busy / slowdown, where `slowdown` is how much longer the cells themselves took
    with both cores busy (the machine: shared caches, memory, clocks) and `busy` the share of the
    2-worker wall time the two workers spent in cells (the executor: start-up, scheduling, the
    last cell running alone)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_scaling_child, args=(cells, repeats, queue))
    child.start()
    times, cell_seconds = queue.get()
    child.join()
    def median(values):
        return statistics.median(list(values))
    speedup = median(a / b for a, b in zip(times[1], times[2]))
    slowdown = median(b / a for a, b in zip(cell_seconds[1], cell_seconds[2]))
    busy = median(c / (2 * t) for c, t in zip(cell_seconds[2], times[2]))
    return [[f"{cells} smoke cells", f"{median(times[1]):.1f}", f"{median(times[2]):.1f}",
             f"{speedup:.2f} (median of {repeats})", f"{slowdown:.2f}", f"{busy:.2f}"]]


def _growth_child(method: str, per_task: int, queue) -> None:
    import resource

    from bench.evaluation.cell import train_and_evaluate
    from bench.planning.grid import expand_grid

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
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=None, help="default: reports/perf.md, or reports/perf-cuda.md on a GPU")
    p.add_argument("--only", default=None,
                   help="which parts to run (default: all on a CPU; overhead,evaluation on a GPU)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:N] (parts 1 and 2)")
    p.add_argument("--profile", default="quick", help="profile of part 1 (default: %(default)s)")
    p.add_argument("--cells", default=None,
                   help="packing: numbers of cells sharing the device (default: 1,2,4,8 on a GPU, 1,2 on a CPU)")
    p.add_argument("--seconds", type=float, default=20.0, help="packing: seconds each measurement trains")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    keep_freed_memory()   # as in every cell's process (bench.evaluation.cell)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    out = args.out or ("reports/perf-cuda.md" if on_gpu else "reports/perf.md")
    parts = (args.only or ("overhead,evaluation" if on_gpu else "overhead,evaluation,scaling,growth")).split(",")
    where = torch.cuda.get_device_name(device) if on_gpu else "one CPU thread"
    sections = []
    Path(out).parent.mkdir(parents=True, exist_ok=True)

    def add(title: str, rows, headers) -> None:
        """One part's table, written out at once: a later part that fails or is stopped loses only itself."""
        table = tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)
        sections.append(f"## {title}\n\n{table}\n")
        Path(out).write_text("# bench.perf\n\n" + "\n".join(sections))

    methods = args.methods.split(",")
    if "overhead" in parts:
        add(f"1. Training-loop overhead ({args.profile} profile, mini, {args.batches} incoming batches, "
            f"median of {args.repeats}, {where})",
            training_overhead(methods, args.batches, args.repeats, args.profile, device),
            ["method", "steps", "ours ms/step", "plain ms/step", "vs plain loop, throughput ratio (target >= 0.95)",
             "independent ms/step", "vs independent loop (target >= 0.95)", "selection events"])
    if "step" in parts:
        modes = ("eager", "fused", "graph") if on_gpu else ("eager", "fused", "compiled")
        add(f"Training step modes ({args.profile} profile, mini, {args.batches} incoming batches, first "
            f"experience left out, {where})",
            training_steps(methods, args.batches, args.profile, device, modes),
            ["method", "training step", "steps timed", "ms/step", "speed-up vs eager"])
    if "packing" in parts:

        counts = [int(c) for c in (args.cells or ("1,2,4,8" if on_gpu else "1,2")).split(",")]
        add(f"Packed cells ({methods[0]}, {args.profile} profile, mini, {args.seconds:.0f} s each, {where})",
            packing_rows(counts, methods[0], resolve_profile(args.profile), str(device), args.seconds),
            ["cells at once", "steps/s (all cells)", "x one cell", "ms/step per cell",
             "Split-MNIST block (4 methods x 3 seeds) at this profile, est. hours (reservoir's steps per cell)"])
    if "evaluation" in parts:
        chunks = (None, 2048, 16384, 262144) if on_gpu else (None,)
        add(f"2. Evaluation efficiency ({where}, fp32)", evaluation_efficiency(device=device, chunk_rows=chunks),
            ["IWAE pass", "decoder form", "rows per chunk", "ms/image (median)", "GFLOP/s",
             "matmul peak GFLOP/s (median)" + ("" if on_gpu else ", best of squares 256-1536"),
             "fraction of peak, median of pairs (target >= 0.5)",
             "fraction of the 1536 matmul alone (the earlier peak)"])
    if "scaling" in parts:
        add("3. Grid scaling (local process pool)", grid_scaling(),
            ["grid", "1 worker s", "2 workers s", "speed-up (target >= 1.8)", "cells' slowdown, both cores busy",
             "workers busy, share of wall time"])
    if "growth" in parts:
        add("4. Cost growth with stream length (quick profile on mini, 160/320/640 images per task)", cost_growth(),
            ["method", "stream", "train s", "x of 1x", "steps", "ms/step", "peak RSS MB", "LTM", "components"])
    print("# bench.perf\n\n" + "\n".join(sections))
    return 0

