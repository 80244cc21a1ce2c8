"""Checkpoints inside a cell: a cell that is killed resumes where it stopped, and its record is the
record of the uninterrupted cell.

What a checkpoint holds (one file per cell, replaced atomically, removed once the record is
written unless kept): the model, the optimizer and the method's plugin pickled together (so the
optimizer's state stays attached to the model's parameters, and a grown mixture is restored grown;
the plugin's memories, counters, timeline and its own random generators come with it), the
strategy's generator and counters, every evaluation's rows so far, the evaluation generator,
Python's, numpy's and torch's global random states, the position in the stream (the next task and,
for task-free methods, the next incoming batch), the seconds spent and the pictures drawn.

When one is written: after every task's evaluation row, and, for methods that see the stream in
incoming batches, at an incoming-batch boundary once `every_seconds` have passed since the last
one (`--checkpoint-minutes`). A method that trains on whole tasks is checkpointed at task
boundaries only. SIGTERM (a scheduler's preemption) asks for one at the next batch boundary, then
the cell stops with `Preempted` and its worker exits with PREEMPTED_EXIT: no record is written,
and the next run resumes the cell from its checkpoint.

A resumed cell's record says where it picked up: `resumed_from`, one entry per resume, {"task": the
task it resumed in (1-based), "batch": how many of that task's incoming batches were already
trained, "at": when}.

A checkpoint resumes only under the code that wrote it (bench/planning/code_digest.py): after an edit, or
an update, the cell starts from zero rather than finish on code its first part never ran.

A method or evaluation that cannot be pickled (a handle to something outside Python, a user's
evaluation without `checkpoint_state`) is not checkpointed: the cell says so once and, if killed,
starts again from zero, as before.
"""
from __future__ import annotations

import os
import pickle
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from bench.planning.code_digest import code_digest

CHECKPOINT_VERSION = 1
PREEMPTED_EXIT = 75   # EX_TEMPFAIL: "try again later": the cell left a checkpoint, rerun to resume
DEFAULT_MINUTES = 5.0

# SIGTERM in a worker: set by the signal handler, read at the next incoming-batch boundary
_STOP = {"requested": False}


def request_stop(*_args) -> None:
    """The worker's SIGTERM handler: checkpoint at the next batch boundary, then stop."""
    _STOP["requested"] = True


def stop_requested() -> bool:
    return _STOP["requested"]


class Preempted(Exception):
    """The cell checkpointed and stopped on request (SIGTERM); rerunning resumes it."""


@dataclass
class CheckpointPolicy:
    """Where a cell's checkpoint lives and how often it is written. `stop_at` (task, batch): act
    as if SIGTERM arrived after that incoming batch of that task, or (task, None) after the task's
    boundary checkpoint (tests, the fault suite; 0-based)."""
    path: Path
    every_seconds: float = DEFAULT_MINUTES * 60
    keep: bool = False
    stop_at: tuple[int, int | None] | None = None
    disabled: str | None = None              # why this cell is not checkpointed, once known
    last_saved: float = field(default_factory=time.monotonic)
    # the code the cell runs (taken when the cell starts): a checkpoint of other code is not resumed
    code: str = field(default_factory=code_digest)

    def due(self) -> bool:
        return time.monotonic() - self.last_saved >= self.every_seconds

    def stop_now(self, task: int, batch: int | None) -> bool:
        return stop_requested() or (self.stop_at is not None and self.stop_at == (task, batch))


def random_states() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def restore_random_states(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])


CLOCK_FIELDS = ("train_iterations", "train_exp_counter", "train_exp_epochs", "train_epoch_iterations",
                "train_exp_iterations", "total_iterations")
STRATEGY_FIELDS = ("generator", "images_trained", "_captures", "_replays", "_capture_error", "finite_loss")


def strategy_state(strategy) -> dict:
    return {"clock": {k: getattr(strategy.clock, k) for k in CLOCK_FIELDS if hasattr(strategy.clock, k)},
            **{k: getattr(strategy, k) for k in STRATEGY_FIELDS}}


def restore_strategy(strategy, state: dict) -> None:
    for key, value in state["clock"].items():
        setattr(strategy.clock, key, value)
    for key in STRATEGY_FIELDS:
        setattr(strategy, key, state[key])


def evaluation_states(evaluations) -> list | None:
    """Each evaluation's rows so far; None when one cannot say them (no `checkpoint_state`)."""
    states = []
    for _, evaluation in evaluations:
        save = getattr(evaluation, "checkpoint_state", None)
        if save is None:
            return None
        states.append(save())
    return states


def write(policy: CheckpointPolicy, state: dict) -> bool:
    """Write the checkpoint atomically (the previous one stays until the new one is whole);
    False, and the policy disabled with the reason said once, when the state cannot be pickled."""
    if policy.disabled:
        return False
    if state.get("evaluations") is None:
        return disable(policy, "an evaluation of this cell has no checkpoint_state()")
    policy.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = policy.path.with_name(f".{policy.path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"version": CHECKPOINT_VERSION, "code": policy.code, **state}, tmp)
        os.replace(tmp, policy.path)
    except (pickle.PicklingError, TypeError, AttributeError, RuntimeError) as err:
        tmp.unlink(missing_ok=True)
        return disable(policy, f"its state cannot be pickled ({type(err).__name__}: {err})")
    policy.last_saved = time.monotonic()
    write_progress(policy.path, state)
    return True


def progress_path(path: Path) -> Path:
    """The checkpoint's progress note beside it (JSON, read by bench.status without torch)."""
    return path.with_suffix(".progress.json")


def write_progress(path: Path, state: dict) -> None:
    import json

    progress = state["progress"]
    note = {"task": progress["task"], "batch": progress["batch"], "tasks": state.get("tasks"),
            "at": time.strftime("%Y-%m-%dT%H:%M:%S"), "bytes": path.stat().st_size}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.progress")
    tmp.write_text(json.dumps(note))
    os.replace(tmp, progress_path(path))


def disable(policy: CheckpointPolicy, why: str) -> bool:
    policy.disabled = why
    print(f"warning: {policy.path.stem}: not checkpointed, {why}; if stopped it starts again from zero",
          file=sys.stderr, flush=True)
    return False


def read(policy: CheckpointPolicy | None, key: str, device: torch.device) -> dict | None:
    """The cell's checkpoint if there is one for this very cell (its key), else None; an unreadable
    or foreign file is set aside (renamed *.bad) and the cell starts from zero."""
    if policy is None or not policy.path.is_file():
        return None
    try:
        state = torch.load(policy.path, map_location=device, weights_only=False)
    except Exception as err:  # noqa: BLE001 - a torn or foreign file: start again, keep it for a look
        set_aside(policy.path, f"unreadable ({type(err).__name__})")
        return None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or state.get("key") != key:
        set_aside(policy.path, "of another cell or version")
        return None
    if state.get("code") != policy.code:   # resuming would run the rest of the cell on other code
        set_aside(policy.path, f"written by other code (digest {state.get('code')}, now {policy.code})")
        return None
    return state


def set_aside(path: Path, why: str) -> None:
    bad = path.with_suffix(".bad")
    os.replace(path, bad)
    print(f"warning: checkpoint {path} {why}: moved to {bad.name}; the cell starts from zero",
          file=sys.stderr, flush=True)


def remove(policy: CheckpointPolicy | None) -> None:
    """After the record is written: the checkpoint goes, unless kept."""
    if policy is not None and not policy.keep:
        policy.path.unlink(missing_ok=True)
        progress_path(policy.path).unlink(missing_ok=True)
