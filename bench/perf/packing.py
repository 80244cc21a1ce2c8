"""`bench.perf --only packing`: the training throughput of N cells sharing one device, against one.

Each cell is a process (as the local executor starts them) training one method through the
harness on `mini` at the given profile. The processes build and warm up (the first experience:
a captured step captures its first graph there; a growing memory recaptures a few times later,
inside the timed window, as in a real cell), wait at a barrier, then train for `seconds`; each
reports the steps it took and the time it took them (whole experiences, so a little over
`seconds`). A cell that fails breaks the barrier and the measurement stops with its error.
Throughput = the sum of the cells' steps per second. With it, `block_hours` estimates the
Split-MNIST paper block (issue 19: 4 methods x 3 seeds on one GPU) from the exact step count of
reservoir's schedule, the most expensive one of the block (the largest memory).
"""
from __future__ import annotations

import math
import multiprocessing
import queue as queue_module

import torch

PAPER_BLOCK = ("reservoir", "ocm", "ocm-iw50", "ocm-dynamic")   # x 3 seeds (issue 19)
SPLIT_MNIST_TRAIN = 60_000   # MNIST's training images: the Split-MNIST stream
START_TIMEOUT = 300.0        # seconds for every cell to start, import and warm up


def schedule_steps(stream_images: int, batch_size: int, epochs: int, budget: int) -> int:
    """Training steps of a replay method whose memory holds min(seen, budget) images: E passes over
    (incoming batch + memory) per incoming batch (the paper's schedule)."""
    steps, seen = 0, 0
    for start in range(0, stream_images, batch_size):
        incoming = min(batch_size, stream_images - start)
        steps += epochs * math.ceil((incoming + min(seen, budget)) / batch_size)
        seen += incoming
    return steps


def block_hours(steps_per_cell: int, cells: int, steps_per_second: float) -> float:
    """Hours for `cells` cells of `steps_per_cell` steps at an aggregate `steps_per_second`."""
    return steps_per_cell * cells / steps_per_second / 3600


def _cell(method: str, profile_name: str, device: str, seed: int, batches: int, seconds: float,
          barrier, queue) -> None:
    """One packed cell; puts (steps, seconds) on the queue, or the error that stopped it (and
    breaks the barrier, so that the other cells do not wait for it)."""
    try:
        queue.put(_train_for(method, profile_name, device, seed, batches, seconds, barrier))
    except BaseException as err:  # noqa: BLE001 - reported to the parent, which raises it
        barrier.abort()
        queue.put(f"{type(err).__name__}: {err}")


def _train_for(method: str, profile_name: str, device: str, seed: int, batches: int, seconds: float,
               barrier) -> tuple[int, float]:
    from bench.evaluation.allocator import keep_freed_memory
    from bench.perf.runs import HarnessRun, mini_images
    from bench.planning.profiles import resolve_profile

    torch.set_num_threads(1)
    keep_freed_memory()
    where = torch.device(device)
    run = HarnessRun(method, mini_images(batches), resolve_profile(profile_name), seed, where)
    experiences = run.experiences
    run.train(experiences[0])                # builds, warms up, captures its first graph
    barrier.wait()
    steps, elapsed, i = 0, 0.0, 1
    while elapsed < seconds:
        sizes, took = run.train(experiences[i % len(experiences)])
        steps, elapsed, i = steps + len(sizes), elapsed + took, i + 1
    return steps, elapsed


def packed_throughput(cells: int, method: str, profile_name: str, device: str, seconds: float = 20.0,
                      batches: int = 40) -> tuple[float, list[float]]:
    """(aggregate steps per second, per-cell ms per step) of `cells` processes training at once."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(cells, timeout=START_TIMEOUT), context.Queue()
    processes = [context.Process(target=_cell, args=(method, profile_name, device, seed, batches, seconds,
                                                     barrier, queue), daemon=True) for seed in range(cells)]
    for process in processes:
        process.start()
    try:
        results = [queue.get(timeout=START_TIMEOUT + 4 * seconds) for _ in processes]
    except queue_module.Empty:
        raise RuntimeError(f"{cells} packed cells: no result within {START_TIMEOUT + 4 * seconds:.0f} s "
                           "(a cell process died?)") from None
    finally:
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
    failures = [r for r in results if isinstance(r, str)]
    if failures:
        raise RuntimeError(f"{cells} packed cells: {failures[0]}")
    return sum(steps / elapsed for steps, elapsed in results), [elapsed / steps * 1e3 for steps, elapsed in results]


def packing_rows(counts, method: str, profile, device: str, seconds: float) -> list[list]:
    """One row per number of packed cells: throughput, its ratio to one cell, ms per step, and the
    paper block's estimated hours at that throughput."""
    from bench.planning.grid import method_config
    from methods import get_method

    rows, single = [], None
    budget = method_config(get_method("reservoir"), "split-mnist", profile.methods.get("reservoir"))["budget"]
    block_steps = schedule_steps(SPLIT_MNIST_TRAIN, profile.batch_size, profile.epochs, budget)
    for cells in counts:
        throughput, per_cell_ms = packed_throughput(cells, method, profile.name, device, seconds)
        single = single or throughput
        rows.append([cells, f"{throughput:.0f}", f"{throughput / single:.2f}",
                     f"{sum(per_cell_ms) / len(per_cell_ms):.3f}",
                     f"{block_hours(block_steps, 3 * len(PAPER_BLOCK), throughput):.2f}"])
    return rows
