"""`python -m bench.check DIR --reference reports/reference.csv`: the regression gate.

Compares each (stream, method, metric) mean in DIR with the reference, one-sided: only a change
for the worse beyond the metric's tolerance counts (lower is better for NLL and forgetting).
Reference cells missing from DIR are reported and fail the check too (a gate that cannot see a
method must not pass it). Exit 1 on any regression or missing cell, 0 otherwise, 2 on bad input.
`--update` rewrites the reference from DIR instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

from bench.execution.store import ResultStore
from bench.planning.defaults import CHECK_TOLERANCE, CHECKED_METRICS
from bench.reporting.frames import (
    METRICS,
    NLL_METRICS,
    ReportError,
    provenance_conflicts,
    select_cells,
    summary_frame,
)

REFERENCE_COLUMNS = ["profile", "stream", "method", "metric", "mean", "std", "n", "provenance"]


def metric_provenance(cells: pd.DataFrame, stream: str, method: str, metric: str) -> str | None:
    """The provenance (JSON) of `metric` for one table row: select_cells made it one per stream."""
    column = "nll_provenance" if metric in NLL_METRICS else "sample_provenance"
    values = cells[(cells["stream"] == stream) & (cells["method"] == method)][column].dropna()
    return values.iloc[0] if len(values) else None


def reference_from(cells: pd.DataFrame) -> pd.DataFrame:
    summary = summary_frame(cells)
    rows = [{"profile": r["profile_name"], "stream": r["stream"], "method": r["method"], "metric": m,
             "mean": r[f"{m}_mean"], "std": r[f"{m}_std"], "n": int(r["n"]),
             "provenance": metric_provenance(cells, r["stream"], r["method"], m)}
            for _, r in summary.iterrows() for m in CHECKED_METRICS if pd.notna(r[f"{m}_mean"])]
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def refuse_other_provenance(current: pd.DataFrame, reference: pd.DataFrame) -> None:
    """The gate compares numbers computed the same way only: a reference row whose provenance
    conflicts with the current one is bad input (exit 2), not a regression."""
    if "provenance" not in reference:
        return
    now = current.set_index(["stream", "method", "metric"])["provenance"]
    for _, ref in reference.iterrows():
        key = (ref["stream"], ref["method"], ref["metric"])
        if key in now.index and isinstance(ref["provenance"], str):
            conflicts = provenance_conflicts([ref["provenance"], now[key]])
            if conflicts:
                detail = "; ".join(f"{k}: {' vs '.join(v)}" for k, v in conflicts.items())
                raise ReportError(f"{ref['metric']} of {ref['method']} on {ref['stream']} was computed "
                                  f"differently from the reference ({detail}); regenerate the reference "
                                  "(--update) if that change is intended")


def parse_tolerance(text: str | None) -> dict[str, float]:
    tolerance = dict(CHECK_TOLERANCE)
    for item in filter(None, (text or "").split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ReportError(f"tolerance '{item}' is not of the form metric=value")
        tolerance[key.strip()] = float(value)
    return tolerance


def compare(current: pd.DataFrame, reference: pd.DataFrame, tolerance: dict[str, float]) -> pd.DataFrame:
    """One row per reference entry: current mean, change (positive = worse) and status."""
    now = current.set_index(["stream", "method", "metric"])["mean"]
    rows = []
    for _, ref in reference.iterrows():
        key = (ref["stream"], ref["method"], ref["metric"])
        metric = METRICS.get(ref["metric"])
        sign = 1.0 if metric is None or metric.lower_is_better else -1.0
        tol = tolerance.get(ref["metric"], 0.0)
        if key not in now.index:
            rows.append([*key, ref["mean"], None, None, tol, "MISSING"])
            continue
        worse_by = sign * (now[key] - ref["mean"])
        status = "REGRESSED" if worse_by > tol else ("better" if worse_by < -tol else "ok")
        rows.append([*key, ref["mean"], now[key], worse_by, tol, status])
    return pd.DataFrame(rows, columns=["stream", "method", "metric", "reference", "current",
                                       "worse by", "tolerance", "status"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results")
    p.add_argument("--reference", required=True)
    p.add_argument("--tolerance", default=None,
                   help="metric=value,... (defaults: " + ", ".join(f"{k}={v}" for k, v in CHECK_TOLERANCE.items()) + ")")
    p.add_argument("--update", action="store_true", help="rewrite the reference from the results")
    args = p.parse_args(argv)
    records = ResultStore(args.results).records()
    try:
        tolerance = parse_tolerance(args.tolerance)
        if args.update:
            reference = reference_from(select_cells(records, None))
            Path(args.reference).parent.mkdir(parents=True, exist_ok=True)
            reference.to_csv(args.reference, index=False)
            print(f"wrote {len(reference)} reference values to {args.reference}")
            return 0
        if not Path(args.reference).exists():
            raise ReportError(f"no reference file {args.reference} (create one with --update)")
        reference = pd.read_csv(args.reference)
        profiles = reference["profile"].unique()
        if len(profiles) != 1:
            raise ReportError(f"the reference mixes profiles: {', '.join(map(str, profiles))}")
        current = reference_from(select_cells(records, str(profiles[0])))
        refuse_other_provenance(current, reference)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result = compare(current, reference, tolerance)
    shown = result.copy()
    for col in ("reference", "current", "worse by"):
        shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    print(tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="simple",
                   disable_numparse=True))
    bad = result[result["status"].isin(["REGRESSED", "MISSING"])]
    extra = current.set_index(["stream", "method", "metric"]).index.difference(
        reference.set_index(["stream", "method", "metric"]).index)
    if len(extra):
        print(f"\nnot in the reference (not checked): {', '.join('/'.join(k) for k in extra)}")
    if len(bad):
        print(f"\n{len(bad)} regression(s) or missing cell(s):", file=sys.stderr)
        for _, r in bad.iterrows():
            detail = "missing from the results" if r["status"] == "MISSING" else (
                f"worse by {r['worse by']:.2f} > tolerance {r['tolerance']}")
            print(f"  {r['method']} on {r['stream']}, {r['metric']}: {detail}", file=sys.stderr)
        return 1
    print("\nno regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
