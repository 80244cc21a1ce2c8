"""One grid cell as a pure function: (cell spec) -> record. Runs in a worker process.

The protocol (docs/protocol.md): tasks arrive in order; task-free methods see each task as online
batches of `batch_size`, each one experience, never a task id or boundary; methods that need
boundaries (joint) get the whole task as one experience. After each task segment t the model is
scored on every task's test set j: NLL[t, j]. The final NLL is over the union of all test sets.
"""
from __future__ import annotations

import functools
import random
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from bench import HARNESS_VERSION
from bench.evaluation.allocator import keep_freed_memory
from bench.evaluation.device import cpu_kernels, describe, resolve_device
from bench.evaluation.features import get_extractor
from bench.evaluation.fid import FIDEvaluator
from bench.evaluation.images import save_grids
from bench.evaluation.metrics import backward_transfer, forgetting
from bench.evaluation.nll import nll_row
from bench.planning.grid import Cell
from methods import get_method
from methods.core.strategy import GenerativeStrategy
from methods.core.task_length import resolve_task_lengths, task_length_fields
from methods.models.native import decoder as decoder_inference
from streams.benchmark import online_experiences, task_benchmark
from streams.datasets import resolve_data_dir
from streams.stream import load_stream


@functools.lru_cache(maxsize=4)
def cached_stream(name: str, data_dir):
    """Streams loaded once per process (the runner loads them before forking its workers)."""
    return load_stream(name, data_dir)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@functools.lru_cache(maxsize=4)
def cached_extractor(name: str, stream_name: str, data_dir):
    """FID feature extractors, built (a classifier trained) once per process."""
    return get_extractor(name, cached_stream(stream_name, data_dir), cache_dir(data_dir))


def cache_dir(data_dir) -> Path:
    """Where FID classifiers and real-set statistics are cached (inside the data directory)."""
    return resolve_data_dir(data_dir) / "cache"


def training_optimizer(model: torch.nn.Module, profile, device: torch.device) -> torch.optim.Adam:
    """The profile's Adam, fused (one kernel per parameter tensor and step instead of about ten):
    on a CPU a step of the paper's VAE took 1.2 ms instead of 3.1 (a sixth of a training step,
    bench.perf's machine); on a GPU a paper-profile step is launch-bound without it."""
    return torch.optim.Adam(model.parameters(), lr=profile.lr, betas=tuple(profile.betas),
                            fused=True if device.type in ("cpu", "cuda") else None,
                            capturable=device.type == "cuda")   # its step count on the GPU: graph capture


def train_and_evaluate(cell: Cell, data_dir=None, artifact_dir: Path | None = None,
                       device: str = "auto", step: str = "auto", on_trained=None) -> dict:
    """Train the cell's method over its stream and return the metrics part of its record.

    The model, the memories, the test sets and every random draw live on `device` (bench.evaluation.device);
    the streams stay on the CPU and each incoming batch is moved when it arrives. `on_trained(model,
    stream)`, if given, is called with the final model after the record's numbers are computed
    (studies that score one trained model in other ways: reports/table1/estimator.py)."""
    torch.set_num_threads(1)
    keep_freed_memory()
    seed_everything(cell.seed)
    profile = cell.profile
    where = resolve_device(device, profile.name)
    if where.type == "cuda":   # this worker's GPU is its current device (one context, the right one)
        torch.cuda.set_device(where)
    stream = cached_stream(cell.stream, data_dir)
    spec = get_method(cell.method)
    n_tasks = len(stream.tasks)
    train_sets = [stream.train_images(t, cell.seed, profile.max_train_per_task) for t in range(n_tasks)]
    task_length = round(sum(map(len, train_sets)) / n_tasks)   # what "one task's length" means here
    config = resolve_task_lengths(spec.config_class(**cell.method_config), task_length)
    plugin = spec.plugin_class(config, seed=cell.seed)
    model = plugin.build_model(profile).to(where)
    optimizer = training_optimizer(model, profile, where)
    # The schedule: E passes over what the method trains on (the paper's), or matched compute
    # (`steps_per_batch` minibatches per incoming batch, one "pass" per experience).
    epochs = 1 if profile.steps_per_batch else plugin.train_epochs(profile)
    strategy = GenerativeStrategy(model=model, optimizer=optimizer, train_epochs=epochs,
                                  train_mb_size=profile.batch_size, plugins=[plugin], seed=cell.seed,
                                  device=where, steps_per_batch=profile.steps_per_batch, step=step)

    test_sets = [stream.test_images(t, profile.eval_test_per_task) for t in range(n_tasks)]
    benchmark = task_benchmark(train_sets, test_sets)
    test_sets = [x.to(where) for x in test_sets]
    eval_generator = torch.Generator(where).manual_seed(cell.seed)
    fid = None
    if profile.fid_features:
        extractor = cached_extractor(profile.fid_features, cell.stream, data_dir).on(where)
        fid = FIDEvaluator(extractor, f"{cell.stream}-{stream.spec.test_binarization_seed}", test_sets,
                           profile.fid_samples, cache_dir(data_dir))
    fid_matrix, fid_final, fid_seconds, pictures = [], None, 0.0, []

    matrix, best_matrix, train_seconds, eval_seconds, last_row = [], [], 0.0, 0.0, None
    for task_experience in benchmark.train_stream:
        start = time.perf_counter()
        if spec.needs_task_boundaries:
            strategy.train(task_experience)
        else:
            for batch_experience in online_experiences(task_experience, profile.batch_size):
                strategy.train(batch_experience)
        train_seconds += time.perf_counter() - start

        start = time.perf_counter()
        last_row = nll_row(model, test_sets, profile.eval_k, eval_generator)
        matrix.append([float(v.mean()) for v in last_row.mixture])
        best_matrix.append([float(v.mean()) for v in last_row.best_component])
        eval_seconds += time.perf_counter() - start

        if fid is not None:
            start = time.perf_counter()
            row, fid_final = fid.row(model, eval_generator)
            fid_matrix.append(row)
            fid_seconds += time.perf_counter() - start
        if profile.sample_grids and artifact_dir is not None:
            pictures += save_grids(model, test_sets, artifact_dir, len(matrix) - 1, eval_generator)

    if on_trained is not None:
        on_trained(model, stream)
    return {
        "nll": float(torch.cat(last_row.mixture).mean()),
        "nll_best_component": float(torch.cat(last_row.best_component).mean()),
        # the test-set sampling error of the final NLL: std over test images / sqrt(images)
        "nll_se": standard_error(torch.cat(last_row.mixture)),
        "nll_best_component_se": standard_error(torch.cat(last_row.best_component)),
        "nll_info": nll_info(profile, stream, test_sets, where),
        "nll_matrix": matrix,
        "nll_best_component_matrix": best_matrix,
        "forgetting_nll": forgetting(matrix),
        "bwt_nll": backward_transfer(matrix),
        "test_sizes": [len(x) for x in test_sets],
        "train_sizes": [len(x) for x in train_sets],
        # task-length settings ("task", "task*X") as the image counts this cell ran with
        "resolved_settings": {name: getattr(config, name) for name in task_length_fields(type(config))},
        "memory": plugin.memory_size,
        "memory_peak": plugin.memory_peak,
        "gradient_steps": strategy.clock.train_iterations + plugin.extra_steps,
        "images_trained": strategy.images_trained + plugin.extra_images,
        "stream_length": plugin.stream_position,
        "timeline": plugin.timeline,
        "components": plugin.num_components(model),
        "parameters": sum(p.numel() for p in model.parameters()),
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "iterations": strategy.clock.train_iterations,
        "device": describe(where),
        "cpu_kernels": cpu_kernels(),
        "training_step": strategy.step_mode,
        **strategy.step_stats(),
        "nll_decoder_form": decoder_inference.form(where),
        **plugin.extra_stats(),
        **({"fid": fid_final, "fid_matrix": fid_matrix, "forgetting_fid": forgetting(fid_matrix),
            "bwt_fid": backward_transfer(fid_matrix), "fid_seconds": fid_seconds,
            "fid_offset": fid.offset_used,
            **fid.summary(cell.seed, stream.spec.test_binarization_seed)} if fid is not None else {}),
        "pictures": [str(Path(artifact_dir.name) / p) for p in pictures] if pictures else [],
    }


def standard_error(values: torch.Tensor) -> float:
    """std / sqrt(n) of per-image values (float64): how much the mean would move with another
    draw of as many test images."""
    values = values.double()
    return float(values.std() / len(values) ** 0.5) if len(values) > 1 else float("nan")


def nll_info(profile, stream, test_sets, device) -> dict:
    """What the NLL numbers were computed with: reports and the gate never put side by side
    numbers whose provenance differs (bench/reporting/frames.py)."""
    return {"estimator": f"IWAE-{profile.eval_k}", "test_images": [len(x) for x in test_sets],
            "binarization_seed": stream.spec.test_binarization_seed, "dtype": "float32",
            "decoder_form": decoder_inference.form(device)}


def record_header(cell: Cell) -> dict:
    """What every record of `cell` starts with, finished or failed (its spec, key and labels)."""
    return {**cell.spec, "key": cell.key, "profile_name": cell.profile.name,
            "method_label": cell.label_method,
            "needs_task_boundaries": get_method(cell.method).needs_task_boundaries,
            "torch_version": torch.__version__, "harness_version": HARNESS_VERSION}


def run_cell(cell: Cell, data_dir=None, artifact_dir: Path | None = None, device: str = "auto",
             step: str = "auto") -> dict:
    """The cell's full record; any error (a NaN loss or a missing GPU included) gives a 'failed'
    record."""
    record = record_header(cell)
    start = time.time()
    try:
        record.update(train_and_evaluate(cell, data_dir, artifact_dir, device, step), status="done")
    except Exception as err:  # noqa: BLE001 - a failed cell must not stop the grid
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc(limit=8))
    record["wall_seconds"] = time.time() - start
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return record
