"""Records laid out against a swept setting (`bench.run --sweep KEY=...`, `bench.report --sweep KEY`).

A sweep's records differ in their profile labels (`quick[epochs=3,...]`): the swept key's value is
read from the label, and any other setting that varies between the records (say `lr`) becomes part
of the row, so that two learning rates are two lines, never one average. Only records whose label
names the key take part (a record of the plain profile was not part of the sweep).
"""
from __future__ import annotations

import math

import pandas as pd

from bench.metrics import primary_metric
from bench.planning.profiles import split_label
from bench.reporting.frames import ReportError, cells_frame, registry_rank


class SweepError(ReportError):
    """Records that do not form a sweep over the key."""


def sweep_value(text: str):
    """'3' -> 3, '0.0001' -> 0.0001, 'none' -> 'none' (numbers sort and plot as numbers)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def sweep_frame(records: list[dict], key: str) -> pd.DataFrame:
    """One row per finished cell of the sweep over `key`, with columns `value` (the key's value)
    and `rest` (the other settings that vary between these records, e.g. 'lr=0.0001'; '' if none)."""
    cells = cells_frame(records)
    if cells.empty:
        raise SweepError("no finished records in this directory")
    labels = [split_label(name) for name in cells["profile_name"]]
    in_sweep = [key in settings for _, settings in labels]
    cells = cells[in_sweep].copy()
    labels = [lab for lab, keep in zip(labels, in_sweep) if keep]
    if cells.empty:
        raise SweepError(f"no records of a sweep over '{key}' (no profile label names it)")
    bases = sorted({base for base, _ in labels})
    mixed = [m for m, g in cells.groupby("method") if g["numbers_version"].nunique() > 1]
    if len(bases) > 1 or mixed:
        raise SweepError(f"a sweep is read within one profile and one harness version per method; these "
                         f"records have profiles {', '.join(bases)}"
                         + (f" and several versions of {', '.join(mixed)}" if mixed else ""))
    others = sorted({k for _, settings in labels for k in settings if k != key})
    varying = [k for k in others
               if len({settings.get(k) for _, settings in labels}) > 1]
    fixed = {k: v for k, v in labels[0][1].items() if k != key and k not in varying}
    shown = [*(f"{k}={v}" for k, v in sorted(fixed.items())), f"{key} swept",
             *(f"{k} varies" for k in varying)]
    cells["profile_name"] = f"{bases[0]}[{','.join(shown)}]"   # what the caption names
    cells["value"] = [sweep_value(settings[key]) for _, settings in labels]
    cells["rest"] = [",".join(f"{k}={settings[k]}" for k in varying if k in settings)
                     for _, settings in labels]
    return cells


def sweep_summary(cells: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """Mean (and std, n) of `metric` (default: the primary) per (stream, method, rest) x value,
    streams and methods in registry order (variants after their method), other settings after the
    plain row."""
    metric = metric or primary_metric().name
    grouped = cells.groupby(["stream", "method", "rest", "value"], sort=False)[metric]
    summary = grouped.agg(["mean", "std", "count"]).reset_index()
    return summary.sort_values(["stream", "method", "rest"], kind="stable",
                               key=lambda c: c if c.name == "rest" else c.map(registry_rank)
                               ).reset_index(drop=True)


def sweep_table(cells: pd.DataFrame, metric: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Rows = stream, method (+ other varying settings), columns = the swept values."""
    summary = sweep_summary(cells, metric)
    values = sorted(summary["value"].unique(), key=lambda v: (isinstance(v, str), v))
    rows = []
    for (stream, method, rest), group in summary.groupby(["stream", "method", "rest"], sort=False):
        by_value = group.set_index("value")
        row = [stream, method + (f" [{rest}]" if rest else "")]
        for value in values:
            if value not in by_value.index:
                row.append("-")
                continue
            mean, std, n = by_value.loc[value, ["mean", "std", "count"]]
            row.append("-" if math.isnan(mean) else (f"{mean:.2f}" if n < 2 or math.isnan(std)
                                                      else f"{mean:.2f} ± {std:.2f}"))
        rows.append(row)
    return ["stream", "method", *[str(v) for v in values]], rows
