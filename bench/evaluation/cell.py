"""One grid cell as a pure function: (cell spec) -> record. Runs in a worker process.

The protocol (docs/protocol.md): tasks arrive in order; task-free methods see each task as online
batches of `batch_size`, each one experience, never a task id or boundary; methods that need
boundaries (joint) get the whole task as one experience. After each task segment t the model is
scored on every task's test set j: NLL[t, j]. The final NLL is over the union of all test sets.
"""
from __future__ import annotations

import random
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from bench import HARNESS_VERSION
from bench.evaluation.allocator import keep_freed_memory
from bench.evaluation.caches import cached_stream
from bench.evaluation.checkpoint import (
    CheckpointPolicy,
    Preempted,
    evaluation_states,
    random_states,
    restore_random_states,
    restore_strategy,
    strategy_state,
)
from bench.evaluation.checkpoint import read as read_checkpoint
from bench.evaluation.checkpoint import write as write_checkpoint
from bench.evaluation.context import EvaluationContext, evaluation_classes, merged_fields
from bench.evaluation.device import cpu_kernels, describe, resolve_device
from bench.evaluation.images import save_grids
from bench.planning.code_digest import code_digest
from bench.planning.grid import Cell
from bench.record import CORE_FIELDS, SCHEMA_VERSION, Record, metric_field_names
from methods import get_method
from methods.core.strategy import GenerativeStrategy
from methods.core.task_length import resolve_task_lengths, task_length_fields
from streams.benchmark import online_experiences, task_benchmark


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def training_optimizer(model: torch.nn.Module, profile, device: torch.device) -> torch.optim.Adam:
    """The profile's Adam, fused (one kernel per parameter tensor and step instead of about ten):
    on a CPU a step of the paper's VAE took 1.2 ms instead of 3.1 (a sixth of a training step,
    bench.perf's machine); on a GPU a paper-profile step is launch-bound without it."""
    return torch.optim.Adam(model.parameters(), lr=profile.lr, betas=tuple(profile.betas),
                            fused=True if device.type in ("cpu", "cuda") else None,
                            capturable=device.type == "cuda")   # its step count on the GPU: graph capture


def train_and_evaluate(cell: Cell, data_dir=None, artifact_dir: Path | None = None,
                       device: str = "auto", training_step: str = "auto", on_trained=None,
                       checkpoint: CheckpointPolicy | None = None) -> dict:
    """Train the cell's method over its stream and return the metrics part of its record.

    The model, the memories, the test sets and every random draw live on `device` (bench.evaluation.device);
    the streams stay on the CPU and each incoming batch is moved when it arrives. `on_trained(model,
    stream)`, if given, is called with the final model after the record's numbers are computed
    (studies that score one trained model in other ways: reports/table1/estimator.py).
    `checkpoint`: where the cell's checkpoint lives (bench/evaluation/checkpoint.py); the cell
    resumes from it when it is there, and raises `Preempted` when asked to stop."""
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
    plugin.image_shape = tuple(train_sets[0].shape[1:])   # the stream's: the models' input size
    construction = plugin.construction_warnings([len(x) for x in train_sets], profile.batch_size)
    for warning in construction:
        print(f"warning: {cell.label}: {warning}", file=sys.stderr, flush=True)
    model = plugin.build_model(profile).to(where)
    optimizer = training_optimizer(model, profile, where)
    resumed = read_checkpoint(checkpoint, cell.key, where)
    if resumed is not None:   # the model, optimizer and plugin as they were, pickled together
        model, optimizer, plugin = resumed["model"], resumed["optimizer"], resumed["plugin"]
    # The schedule: E passes over what the method trains on (the paper's), or matched compute
    # (`steps_per_batch` minibatches per incoming batch, one "pass" per experience).
    epochs = 1 if profile.steps_per_batch else plugin.train_epochs(profile)
    strategy = GenerativeStrategy(model=model, optimizer=optimizer, train_epochs=epochs,
                                  train_mb_size=profile.batch_size, plugins=[plugin], seed=cell.seed,
                                  device=where, steps_per_batch=profile.steps_per_batch,
                                  training_step=training_step)

    test_sets = [stream.test_images(t, profile.eval_test_per_task) for t in range(n_tasks)]
    benchmark = task_benchmark(train_sets, test_sets)
    test_sets = [x.to(where) for x in test_sets]
    eval_generator = torch.Generator(where).manual_seed(cell.seed)
    # The metric families' evaluations (bench/metrics: NLL, then FID/KID/PRDC when the profile has
    # FID features), each scoring the model after every task segment, in the registry's order.
    context = EvaluationContext(cell, stream, test_sets, where, data_dir)
    evaluations = [(declared, evaluation(context)) for declared, evaluation in evaluation_classes(profile)]

    progress = {"task": 0, "batch": 0, "train_seconds": 0.0, "pictures": [], "resumed_from": []}
    if resumed is not None:
        restore_strategy(strategy, resumed["strategy"])
        for (_, evaluation), state in zip(evaluations, resumed["evaluations"]):
            evaluation.restore_state(state)
        eval_generator = resumed["eval_generator"]
        progress = {**resumed["progress"], "resumed_from": [*resumed["progress"]["resumed_from"], {
            "task": resumed["progress"]["task"] + 1, "batch": resumed["progress"]["batch"],
            "at": time.strftime("%Y-%m-%dT%H:%M:%S")}]}
        restore_random_states(resumed["random"])

    def save(task: int, batch: int) -> None:
        """The whole state, to resume at incoming batch `batch` of task `task` (0-based)."""
        if checkpoint is not None:
            write_checkpoint(checkpoint, {
                "key": cell.key, "model": model, "optimizer": optimizer, "plugin": plugin,
                "strategy": strategy_state(strategy), "evaluations": evaluation_states(evaluations),
                "eval_generator": eval_generator, "random": random_states(), "tasks": n_tasks,
                "progress": {**progress, "task": task, "batch": batch}})

    for task in range(progress["task"], n_tasks):
        task_experience = benchmark.train_stream[task]
        start = time.perf_counter()
        if spec.needs_task_boundaries:   # whole tasks: checkpointed at their boundaries only
            strategy.train(task_experience)
        else:
            for batch, batch_experience in enumerate(online_experiences(task_experience, profile.batch_size)):
                if batch < progress["batch"]:
                    continue   # trained before the checkpoint this cell resumed from
                strategy.train(batch_experience)
                if checkpoint is not None and (checkpoint.due() or checkpoint.stop_now(task, batch)):
                    progress["train_seconds"] += time.perf_counter() - start
                    start = time.perf_counter()
                    save(task, batch + 1)
                    if checkpoint.stop_now(task, batch):
                        raise Preempted(f"{cell.label}: stopped at task {task + 1}, incoming batch "
                                        f"{batch + 1}; rerun to resume from its checkpoint")
        progress["train_seconds"] += time.perf_counter() - start
        progress["batch"] = 0

        for _, evaluation in evaluations:
            evaluation.after_segment(model, eval_generator)
        if profile.sample_grids and artifact_dir is not None:
            progress["pictures"] += save_grids(model, test_sets, artifact_dir, task, eval_generator)
        if task + 1 < n_tasks:
            save(task + 1, 0)
            if checkpoint is not None and checkpoint.stop_now(task, None):
                raise Preempted(f"{cell.label}: stopped after task {task + 1}; rerun to resume from its checkpoint")
    train_seconds, pictures = progress["train_seconds"], progress["pictures"]

    if on_trained is not None:
        on_trained(model, stream)
    measured = merged_fields([(declared, evaluation.fields()) for declared, evaluation in evaluations])
    extras = method_extras(plugin)
    return {
        **measured,   # every metric family's numbers, as their evaluations declare them
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
        "iterations": strategy.clock.train_iterations,
        "device": describe(where),
        "cpu_kernels": cpu_kernels(),
        "training_step": strategy.training_step,
        **strategy.step_stats(),
        **extras,
        **({"construction_warnings": construction} if construction else {}),
        **({"resumed_from": progress["resumed_from"]} if progress["resumed_from"] else {}),
        "pictures": [str(Path(artifact_dir.name) / p) for p in pictures] if pictures else [],
    }


def method_extras(plugin) -> dict:
    """The method's own numbers (`extra_stats()`), the record's `extras`: a key that is a field of
    the record or of a metric is refused (it would overwrite what the harness measured)."""
    extras = plugin.extra_stats()
    taken = sorted(set(extras) & (set(CORE_FIELDS) | metric_field_names() | {"timeline", "schema_version"}))
    if taken:
        raise ValueError(f"{type(plugin).__name__}.extra_stats() returns {', '.join(taken)}: the record's own "
                         "fields; give them other names")
    return extras


def record_header(cell: Cell, code: str | None = None) -> dict:
    """What every record of `cell` starts with, finished or failed (its spec, key and labels);
    `code`: the digest of the code it ran (bench/planning/code_digest.py; None: the code on disk now)."""
    return {**cell.spec, "key": cell.key, "profile_name": cell.profile.name,
            "method_label": cell.label_method,
            "needs_task_boundaries": get_method(cell.method).needs_task_boundaries,
            "torch_version": torch.__version__, "harness_version": HARNESS_VERSION, "code_digest": code or code_digest(),
            "schema_version": SCHEMA_VERSION}


def run_cell(cell: Cell, data_dir=None, artifact_dir: Path | None = None, device: str = "auto",
             training_step: str = "auto", checkpoint: CheckpointPolicy | None = None, on_trained=None) -> Record:
    """The cell's full record; any error (a NaN loss or a missing GPU included) gives a 'failed'
    record. `Preempted` (a stop asked for, the checkpoint written) passes through: no record."""
    record = record_header(cell)
    start = time.time()
    try:
        record.update(train_and_evaluate(cell, data_dir, artifact_dir, device, training_step,
                                         on_trained=on_trained, checkpoint=checkpoint), status="done")
    except Preempted:
        raise
    except Exception as err:  # noqa: BLE001 - a failed cell must not stop the grid
        record.update(status="failed", error=f"{type(err).__name__}: {err}",
                      traceback=traceback.format_exc(limit=8))
    record["wall_seconds"] = time.time() - start
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return Record.from_json(record)
