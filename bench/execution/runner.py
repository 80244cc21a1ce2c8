"""A planned grid run to its end: the cells that can run now, then those whose budget is matched to
another cell's record, on the chosen executor; cells held by a live runner elsewhere waited for
(or left to it); what failed and why. `bench.run` plans (bench/planning/plan.py), checks and warms
up (bench/evaluation/prepare.py), hands the plan to `GridRunner.run`, and reports the outcome.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

from bench.execution import CommonOptions, Keeping, get_executor
from bench.execution.claims import describe_holder, live_claims
from bench.execution.store import ResultStore
from bench.planning.grid import Cell
from bench.planning.plan import GridPlan, cells_run, resolve_waiting
from bench.planning.schedule import longest_first


@dataclass(frozen=True)
class RunOptions:
    """How cells run: `bench.run`'s execution options. `executor` names a registered executor
    (bench/execution/__init__.py) and `executor_settings` its own settings ({name: value}, checked
    against its options dataclass); the rest every executor gets (`CommonOptions`)."""
    executor: str = "local"
    workers: int = 1
    device: str = "auto"
    training_step: str = "auto"
    cells_per_gpu: int | None = None
    data_dir: object = None
    executor_settings: dict = field(default_factory=dict, hash=False)
    force: bool = False                # rerun cells that have a record
    wait: bool = True                  # wait for cells a live runner elsewhere holds
    progress: bool = False             # a progress bar
    keeping: Keeping = field(default_factory=Keeping)   # checkpoints and kept models

    def check(self, warn) -> None:
        """Refuse options that cannot work together (ValueError naming what to give instead)."""
        if self.workers < 1:
            raise ValueError(f"--workers must be at least 1, not {self.workers}")
        if self.cells_per_gpu is not None and self.cells_per_gpu < 1:
            raise ValueError(f"--cells-per-gpu must be at least 1, not {self.cells_per_gpu}")
        own = self.own()
        if hasattr(own, "check"):
            own.check(self.common, warn)

    @property
    def spec(self):
        return get_executor(self.executor)

    def own(self):
        """The executor's own settings, typed and bounded by its options dataclass."""
        from bench.planning.validate import check_value, field_bounds

        values = self.spec.make_options(self.executor_settings)
        bounds = field_bounds(type(values))
        for name in self.executor_settings:
            check_value(f"{self.executor}.{name}", getattr(values, name), bounds[name])
        return values

    @property
    def common(self) -> CommonOptions:
        return CommonOptions(self.workers, self.device, self.training_step, self.cells_per_gpu, self.data_dir,
                             self.keeping)

    @property
    def local(self) -> bool:
        """Whether the workers are this machine."""
        return self.spec.local


@dataclass
class GridOutcome:
    cells: list[Cell]                                   # the grid as it ran, in grid order
    failed: list[tuple[Cell, str]] = field(default_factory=list)     # (cell, why)
    elsewhere: list[tuple[Cell, str]] = field(default_factory=list)  # (cell, the runner holding it)


class GridRunner:
    """Runs a plan's cells into `store` with `options`; `cells` is what it has got to (for the line
    an interrupted run ends with). `baseline`: finished records of other studies, by key (read-only:
    bench.run --baseline): a cell among them is done, not run, and matched budgets resolve from them."""

    def __init__(self, plan: GridPlan, store: ResultStore, options: RunOptions, baseline: dict | None = None):
        self.plan, self.store, self.options = plan, store, options
        self.baseline = baseline or {}
        self.cells: list[Cell] = list(plan.cells)
        self.outcomes: dict[str, dict] = {}

    def is_done(self, cell: Cell) -> bool:
        return cell.key in self.baseline or self.store.is_done(cell)

    def load(self, cell: Cell):
        """The cell's record: its own, or the baseline's."""
        return self.store.load(cell) or self.baseline.get(cell.key)

    def records(self) -> list:
        return self.store.records() + list(self.baseline.values())

    def run(self) -> GridOutcome:
        """Both phases: the cells that can run, then the matched ones once the records they match
        are there (the reference cells of this grid run in the first phase). An executor that
        cannot start (its optional package missing) raises RuntimeError."""
        self.run_phase(self.plan.ready, "cells")
        resolved, unmatched = {}, []
        if self.plan.waiting:
            resolved, unmatched = resolve_waiting(self.plan, self.records())
            self.cells = [*self.plan.ready, *resolved.values()]
            self.run_phase(list(resolved.values()), "matched cells")
        return self.outcome(cells_run(self.plan, resolved), unmatched)

    def run_phase(self, cells: list[Cell], what: str) -> None:
        store, options = self.store, self.options
        store.write_manifest(cells)
        if options.force:
            for cell in cells:
                store.path(cell).unlink(missing_ok=True)
        pending = longest_first([c for c in cells if not self.is_done(c)], store.records())
        from_baseline = sum(c.key in self.baseline for c in cells)
        print(f"{len(cells)} {what} ({len(cells) - len(pending)} already done"
              + (f", {from_baseline} of them in the baseline" if from_baseline else "")
              + f"), profile {self.plan.profile_names}, "
              f"executor {options.executor}, {min(options.workers, max(len(pending), 1))} worker(s), device "
              f"{options.device} -> {store.root}", file=sys.stderr)
        self.execute(pending)
        if options.wait:
            held = [c for c in pending if self.outcomes.get(c.key, {}).get("status") == "running elsewhere"]
            wait_for_other_runners(held, store, self.execute)

    def execute(self, cells: list[Cell]) -> None:
        from bench.execution.executor import run_cells  # torch: imported once there are cells to run

        o = self.options
        self.outcomes.update(run_cells(cells, self.store, o.executor, o.common, o.own(), progress=o.progress))

    def outcome(self, cells: list[Cell], unmatched: list[tuple[Cell, str]]) -> GridOutcome:
        store = self.store
        held = live_claims(store.root)
        elsewhere = [(c, describe_holder(held[store.path(c).stem])) for c in cells
                     if not self.is_done(c) and store.path(c).stem in held]
        away = {c.key for c, _ in elsewhere}
        failed = [(c, getattr(store.load(c), "error", None) or self.outcomes.get(c.key, {}).get("error")
                   or "no record (interrupted?)")
                  for c in cells if not self.is_done(c) and c.key not in away] + unmatched
        return GridOutcome(cells, failed, elsewhere)

    def interrupted_line(self, what: str = "interrupted (Ctrl-C)") -> str:
        """One line: how far an interrupted run got and how to resume it."""
        done = sum(self.is_done(c) for c in self.cells)
        return (f"{what}: {done} of {len(self.cells)} cells done, their records kept in "
                f"{self.store.root}; rerun the same command to resume")


def wait_for_other_runners(cells, store: ResultStore, run, poll_seconds: float = 2.0,
                           repeat_seconds: float = 30.0) -> None:
    """Wait for `cells`, which live runners elsewhere held when this one came to them, saying which
    and where; a cell whose runner let go of it without a finished record (it died, or its cell
    failed there) is run here, once."""
    waiting, said, said_at = list(cells), None, 0.0
    while waiting:
        held = live_claims(store.root)
        free = [c for c in waiting if store.path(c).stem not in held and not store.is_done(c)]
        if free:
            run(free)
        waiting = [c for c in waiting if not store.is_done(c) and c not in free]
        if not waiting:
            return
        line = (f"waiting for {len(waiting)} cell(s) run by another runner: "
                + ", ".join(f"{c.label} ({describe_holder(held.get(store.path(c).stem, {}))})" for c in waiting[:5])
                + (" ..." if len(waiting) > 5 else ""))
        if line != said or time.time() - said_at > repeat_seconds:
            print(line, file=sys.stderr)
            said, said_at = line, time.time()
        time.sleep(poll_seconds)


def failure_lines(failed: list[tuple[Cell, str]], store: ResultStore) -> list[str]:
    """'  label: error (traceback in FILE)' per failed cell, then how to print the tracebacks."""
    lines, traced = [], False
    for cell, error in failed:
        record = store.load(cell)
        where = ""
        if record is not None and record.traceback:
            where, traced = f" (traceback in {store.path(cell)})", True
        lines.append(f"  {cell.label}: {error}{where}")
    if traced:
        lines.append(f"tracebacks: python -m bench.status {store.root} --tracebacks")
    return lines
