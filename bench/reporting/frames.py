"""Selection and aggregation: records -> one row per cell -> mean ± std per method (pandas).

Every table, figure and the regression gate read records through here: `select_cells` refuses to
average records of different profiles or harness versions, `summary_frame` aggregates over seeds.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.metrics import METRICS as REGISTERED
from bench.metrics import Column, columns, derived_columns, provenances
from bench.record import Record, as_records
from methods import METHODS as METHODS_REGISTERED

# Every report column: a metric, or a summary of one (bench/metrics): its label, direction, digits.
COLUMNS: dict[str, Column] = columns()
MATRICES = [m.matrix for m in REGISTERED.values() if m.matrix]
INTERVALS = {f"{m.interval}_half": m.interval for m in REGISTERED.values() if m.interval}   # column -> record field
PROVENANCE_COLUMNS = [p.column for p in provenances()]
LIFTED_COLUMNS = [column for p in provenances() for column in p.frame_columns]   # settings captions read
# What a method stored and spent (not metrics: no direction, no provenance): the record's fields.
BUDGETS = ["memory", "memory_peak", "gradient_steps", "images_trained", "components", "train_seconds", "eval_seconds"]

CELL_COLUMNS = ["profile_name", "numbers_version", "stream", "method", "method_name", "seed",
                "needs_task_boundaries", *COLUMNS, *BUDGETS, "parameters", "eval_k", "eval_test_per_task",
                *MATRICES, *LIFTED_COLUMNS, "matched_budget", "budget_note", "timeline", "config",
                *PROVENANCE_COLUMNS, *INTERVALS, "nll_per_image"]
SUMMARY_METRICS = [*COLUMNS, *BUDGETS, *INTERVALS]


class ReportError(ValueError):
    """Records that cannot be put in one table (none, or of different profiles); bad layout."""


def provenance_values(record: Record) -> dict:
    """{provenance column: what the record's numbers of that family were computed with (JSON)}: every
    key its evaluation wrote, the cell's seeds and the declared informational keys aside
    (bench/metrics: compared by construction); and the settings each family lifts into the frame
    for its caption (`Provenance.frame_columns`)."""
    out: dict = {p.column: p.of(record) for p in provenances()}
    for p in provenances():
        out.update(p.lifted(record))
    return out


def provenance_conflicts(values) -> dict[str, list]:
    """{setting: its different values} over provenance JSON strings: a setting that two records
    both name with different values (a setting only newer records name is no conflict)."""
    seen: dict[str, set] = {}
    for text in values:
        if isinstance(text, str):
            for key, value in json.loads(text).items():
                seen.setdefault(key, set()).add(json.dumps(value, sort_keys=True))
    return {key: sorted(v) for key, v in seen.items() if len(v) > 1}


def derived_values(record: Record) -> dict[str, float]:
    """The summaries computed from the record's matrices when it is read (bench/metrics: CLoG's
    AIQ, AFQ, FR); NaN where the record has no such matrix."""
    out = {}
    for column, (metric, summary) in derived_columns().items():
        matrix = record.metric(metric.matrix)
        out[column] = summary.compute(matrix, metric.lower_is_better) if matrix else float("nan")
    return out


def registry_rank(name):
    """Streams and methods sort in registry order, a variant right after its method (unknown
    names after all, as they are)."""
    from methods import METHODS, PRESETS, base_name
    from streams import STREAMS

    order = {n: i for i, n in enumerate([*STREAMS, *METHODS])}
    if not isinstance(name, str):
        return name
    base = base_name(name)
    if base in PRESETS:   # a preset sorts as a variant of its method
        return order.get(PRESETS[base].method, len(order)) + 0.5
    return order.get(name, order.get(base, len(order)) + (0.5 if base != name else 0))


def matched_budget(record: Record) -> str | None:
    """'budget=ocm:590' for a cell whose settings were matched to another method's memory."""
    return ",".join(f"{k}={ref}:{record.method_config[k]}" for k, ref in record.matched.items()) or None


def budget_note(record: Record) -> str | None:
    """What a method may store, as the method declares it (its `Reporting.budget_note`: 'budget
    3000', 'STM 512, LTM <= 2560'), or a matched setting's source ('budget = ocm's peak memory');
    None for methods without a memory setting, or not registered here."""
    if record.matched:
        return ", ".join(f"{setting} = {reference}'s peak memory" for setting, reference in record.matched.items())
    spec = METHODS_REGISTERED.get(record.method or "")
    return spec.reporting.budget_note(spec.config_class, record.method_config) if spec is not None else None


def config_text(record: Record) -> str:
    """The record's method settings as one JSON text, a matched setting as 'match:REF' (its number
    is REF's peak memory on each seed: different per seed by design, one experiment all the same)."""
    config = dict(record.method_config)
    for key, reference in record.matched.items():
        if key in config:
            config[key] = f"match:{reference}"
    return json.dumps(config, sort_keys=True)


def half_width(interval) -> float:
    """Half the width of a [low, high] interval (NaN without one)."""
    return (interval[1] - interval[0]) / 2 if interval else float("nan")


def cell_row(r: Record) -> dict:
    """A finished record as one row of the cells frame (its fields, by name: CELL_COLUMNS)."""
    return {**r.metrics, **{name: getattr(r, name) for name in BUDGETS if name in Record.__dataclass_fields__},
            "profile_name": r.profile_name, "numbers_version": r.numbers_version or r.harness_version,
            "stream": r.stream,
            "method": r.label, "method_name": r.method, "seed": r.seed,
            "needs_task_boundaries": r.needs_task_boundaries, "parameters": r.parameters,
            "eval_k": r.profile["eval_k"], "eval_test_per_task": r.profile["eval_test_per_task"],
            "matched_budget": matched_budget(r), "budget_note": budget_note(r), "timeline": r.timeline,
            "config": config_text(r), **provenance_values(r), **derived_values(r),
            **{column: half_width(r.metric(field)) for column, field in INTERVALS.items()}}


def cells_frame(records) -> pd.DataFrame:
    """One row per finished cell (evaluation settings lifted out of the stored profile). `method`
    is the method's label (a variant such as 'reservoir[budget=match:ocm]' is its own row);
    `method_name` the registered method. `records`: Records, or the JSON objects of records."""
    done = [cell_row(r) for r in as_records(records) if r.done]
    frame = pd.DataFrame(done, columns=CELL_COLUMNS)
    frame[SUMMARY_METRICS] = frame[SUMMARY_METRICS].astype(float)   # missing metrics (no FID) are NaN
    return frame


def select_cells(records, profile: str | None) -> pd.DataFrame:
    """The finished cells of one profile, in registry order. Refuses mixes: of profiles, and of
    numbers versions within one method's row (rows may differ: a release that changed one
    baseline reran that baseline only; each row's version is in the caption)."""
    cells = cells_frame(records)
    if cells.empty:
        raise ReportError("no finished records in this directory")
    if profile is not None:
        cells = cells[cells["profile_name"] == profile]
        if cells.empty:
            raise ReportError(f"no records of profile '{profile}'")
    profiles = sorted(cells["profile_name"].unique())
    if len(profiles) > 1:
        raise ReportError("records from different profiles are never averaged together: "
                          f"{', '.join(profiles)}; choose one with --profile")
    refuse_mixed_versions(cells)
    refuse_mixed_configs(cells)
    refuse_mixed_provenance(cells)
    return cells.sort_values(["stream", "method", "seed"], key=lambda c: c.map(registry_rank),
                             kind="stable")


def refuse_mixed_versions(cells: pd.DataFrame) -> None:
    """One row, one version of its method's numbers (bench/planning/keys.py)."""
    for (stream, method), group in cells.groupby(["stream", "method"], sort=False):
        versions = sorted(group["numbers_version"].astype(str).unique())
        if len(versions) > 1:
            raise ReportError(f"{method} on {stream} has records of harness versions {', '.join(versions)} "
                              "(numbers computed differently): never averaged together; keep one version's "
                              "records in the directory")


def refuse_mixed_configs(cells: pd.DataFrame) -> None:
    """One row of a table is one experiment: records of a method whose settings differ (a default
    changed between two runs into the same directory) or two records of one seed are never
    averaged together."""
    keys = ["profile_name", "stream", "method"]
    configs = cells.groupby(keys, sort=False)["config"].nunique()
    mixed = [f"{method} on {stream}" for (_, stream, method), n in configs.items() if n > 1]
    repeated = cells.groupby([*keys, "seed"], sort=False).size()
    twice = [f"{method} on {stream}, seed {seed}" for (_, stream, method, seed), n in repeated.items() if n > 1]
    if mixed or twice:
        raise ReportError(
            "records that are not one experiment would be averaged together: "
            + "; ".join([*(f"{m}: different settings" for m in mixed), *(f"{t}: two records" for t in twice)])
            + " (a default changed between runs into this directory? report each run's directory, "
              "or move the older records away)")


def refuse_mixed_provenance(cells: pd.DataFrame) -> None:
    """Numbers of one stream are put side by side only when they were computed the same way (the
    same IWAE estimator, test images and binarization; the same feature extractor, weights and
    sample counts)."""
    for provenance in provenances():
        column, what = provenance.column, provenance.name
        for stream, values in cells.groupby("stream", sort=False)[column]:
            conflicts = provenance_conflicts(values)
            if conflicts:
                detail = "; ".join(f"{k}: {' vs '.join(v)}" for k, v in conflicts.items())
                raise ReportError(f"{what} numbers on {stream} were computed differently and are never "
                                  f"put side by side ({detail})")


def summary_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (over seeds; NaN for one seed) and n per (profile, stream, method), in the
    order the streams and methods first appear."""
    keys = ["profile_name", "stream", "method"]
    grouped = cells.groupby(keys, sort=False)
    summary = grouped[SUMMARY_METRICS].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["n"] = grouped.size()
    summary["needs_task_boundaries"] = grouped["needs_task_boundaries"].first()
    summary["fid_extractor_first"] = grouped["fid_extractor"].first()
    summary["budget_note"] = grouped["budget_note"].first()
    summary["matched_budget"] = grouped["matched_budget"].agg(
        lambda v: "/".join(x.rpartition(":")[2] for x in v if isinstance(x, str)) or None)
    return summary.reset_index()


def best_methods(summary: pd.DataFrame, metric: Column) -> dict[str, str]:
    """Per stream, the method with the best mean; an upper bound (joint: `Reporting.upper_bound`)
    only where it is the stream's only row with a value."""
    from methods import is_upper_bound

    best = {}
    for stream, group in summary.groupby("stream", sort=False):
        competitors = group[[not is_upper_bound(m) for m in group["method"]]]
        if competitors[f"{metric.column}_mean"].notna().any():
            group = competitors
        values = group[f"{metric.column}_mean"]
        if values.notna().any():
            idx = values.idxmin() if metric.lower_is_better else values.idxmax()
            best[stream] = group.loc[idx, "method"]
    return best


def mean_matrix(group: pd.DataFrame, column: str) -> np.ndarray | None:
    """The per-seed matrices of `column` averaged over seeds (None where a record lacks it)."""
    values = group[column].tolist()
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values):
        return None
    return np.mean(np.array(values, dtype=float), axis=0)
