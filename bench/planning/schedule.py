"""The order in which a grid's pending cells go to the workers: longest first.

Workers take the next cell as they free up, so a grid's wall time is its work shared among them
plus a tail: the last cells running while the other workers have nothing left. Handing out the
longest cells first leaves the short ones for the end (the LPT rule). For the default grid on 2
workers (5 methods x 3 seeds, quick profile) the grid's own order, which ends on ocm-dynamic,
takes 178.9 s and longest-first 171.6 s, against 170.0 s of perfectly shared work (simulated
from the cell times below; tests/test_schedule.py).

A cell's expected time is the median wall time of finished records of the same method, stream
and profile in the results directory (earlier runs, other seeds, any harness version); for the
others, RELATIVE_COST scaled by what the recorded methods of that stream and profile took. Only
the order depends on these estimates, never a result.
"""
from __future__ import annotations

import statistics
from collections import defaultdict

from bench.planning.defaults import (
    IMPORTANCE_SAMPLE_SECONDS,
    RELATIVE_COST,
    STEP_COST_PER_EXTRA_SAMPLE,
    TRAIN_SECONDS_PER_BATCH,
    UNKNOWN_METHOD_SECONDS,
)
from bench.planning.grid import Cell
from bench.record import as_records


def relative_cost(method: str) -> float:
    return RELATIVE_COST.get(method, 1.0)


def expected_seconds(cells: list[Cell], records) -> dict[str, float]:
    """{cell key: expected wall seconds} from the finished `records` and RELATIVE_COST."""
    seconds = defaultdict(list)
    for record in as_records(records):
        if record.done and record.wall_seconds is not None:
            seconds[(record.method, record.stream, record.profile_name)].append(record.wall_seconds)
    measured = {group: statistics.median(values) for group, values in seconds.items()}
    per_unit = defaultdict(list)     # seconds per unit of relative cost, per (stream, profile)
    for (method, stream, profile), value in measured.items():
        per_unit[(stream, profile)].append(value / relative_cost(method))
    expected = {}
    for cell in cells:
        group = (cell.method, cell.stream, cell.profile.name)
        if group in measured:
            expected[cell.key] = measured[group]
        else:
            units = per_unit.get((cell.stream, cell.profile.name))
            scale = statistics.median(units) if units else training_scale(cell.profile)
            expected[cell.key] = relative_cost(cell.method) * scale
    return expected


def training_scale(profile) -> float:
    """Training work per incoming batch relative to the quick profile's E = 1, for profiles with
    no record yet (a sweep over E would otherwise start its E = 1 cells as early as its E = 10)."""
    return float(profile.steps_per_batch or profile.epochs)


def longest_first(cells: list[Cell], records) -> list[Cell]:
    """`cells` by decreasing expected time (ties keep the grid's order)."""
    expected = expected_seconds(cells, records)
    return sorted(cells, key=lambda cell: -expected[cell.key])


def estimated_cpu_seconds(cell: Cell, train_images: int, tasks: int, test_images: int) -> float:
    """A rough estimate (within a factor of 2-3) of one cell's CPU seconds from its size: incoming
    batches x E x the method's measured seconds per batch (bench/planning/defaults.py), plus the
    IWAE evaluation of every task's `test_images` after each of the `tasks` segments. It decides
    nothing but the line a long grid prints before it starts."""
    profile = cell.profile
    batches = train_images / profile.batch_size
    passes = profile.steps_per_batch or profile.epochs
    per_batch = TRAIN_SECONDS_PER_BATCH.get(cell.method, UNKNOWN_METHOD_SECONDS)
    samples = 1 + STEP_COST_PER_EXTRA_SAMPLE * (profile.mc_samples - 1)
    evaluation = tasks * tasks * test_images * profile.eval_k * IMPORTANCE_SAMPLE_SECONDS
    return batches * passes * per_batch * samples + evaluation


def describe_hours(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 24 * 365:
        return f"{hours / (24 * 365):,.0f} years"
    return f"{hours:,.1f} hours" if hours < 100 else f"{hours / 24:,.0f} days"
