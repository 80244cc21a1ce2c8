"""`python -m bench.check DIR --reference reports/reference.csv`: the regression gate.

Compares each (stream, method, metric) mean in DIR with the reference, one-sided: only a change
for the worse beyond the metric's tolerance counts (lower is better for NLL and forgetting).
Reference cells missing from DIR, and cells with fewer seeds than the reference's, are named and
fail the check too (a gate that cannot see a method must not pass it). Exit 1 on any regression;
2 when the results cannot be checked (cells or seeds missing against the reference, a missing
directory or reference, unknown or non-numeric tolerances), with what to do; 0 otherwise.
`--update` rewrites the reference from DIR instead.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.metrics import checked, columns, provenance_of
from streams.files import write_atomic

# The checked columns and their one-sided slack, as each metric's module declares them (bench/metrics).
CHECK_TOLERANCE = checked()
CHECKED_METRICS = list(CHECK_TOLERANCE)

REFERENCE_COLUMNS = ["profile", "stream", "method", "metric", "mean", "std", "n", "provenance", "seeds"]


class CheckError(ValueError):
    """Input the gate cannot check (exit 2); the message says what to do."""


def metric_provenance(cells, stream: str, method: str, metric: str) -> str | None:
    """The provenance (JSON) of `metric` for one table row: select_cells made it one per stream."""
    column = provenance_of(metric).column
    values = cells[(cells["stream"] == stream) & (cells["method"] == method)][column].dropna()
    return values.iloc[0] if len(values) else None


def seeds_of(cells) -> dict[tuple[str, str], list[int]]:
    """{(stream, method): its seeds, sorted} of a cells frame."""
    return {key: sorted(int(s) for s in group) for key, group in cells.groupby(["stream", "method"])["seed"]}


def reference_from(cells):
    import pandas as pd

    from bench.reporting.frames import summary_frame

    summary = summary_frame(cells)
    seeds = seeds_of(cells)
    rows = [{"profile": r["profile_name"], "stream": r["stream"], "method": r["method"], "metric": m,
             "mean": r[f"{m}_mean"], "std": r[f"{m}_std"], "n": int(r["n"]),
             "provenance": metric_provenance(cells, r["stream"], r["method"], m),
             "seeds": " ".join(map(str, seeds[(r["stream"], r["method"])]))}
            for _, r in summary.iterrows() for m in CHECKED_METRICS if pd.notna(r[f"{m}_mean"])]
    return pd.DataFrame(rows, columns=REFERENCE_COLUMNS)


def read_reference(path):
    """The reference CSV, refused (ReportError: exit 2) unless it is one: readable, with the
    columns `--update` writes."""
    import pandas as pd

    from bench.reporting.frames import ReportError

    try:
        reference = pd.read_csv(path, dtype={"seeds": str})
    except (OSError, ValueError, UnicodeDecodeError) as err:   # pandas' parser errors are ValueErrors
        raise ReportError(f"cannot read the reference {path}: {str(err).splitlines()[0]}") from None
    missing = [c for c in ("profile", "stream", "method", "metric", "mean", "std", "n") if c not in reference]
    if missing:
        raise ReportError(f"{path} is not a reference of bench.check (no column {', '.join(missing)}); "
                          "write one with --update")
    return reference


def refuse_other_provenance(current, reference) -> None:
    """The gate compares numbers computed the same way only: a reference row whose provenance
    conflicts with the current one is bad input (exit 2), not a regression."""
    from bench.reporting.frames import ReportError, provenance_conflicts

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
    """The default tolerances updated by 'metric=value,...'; an unknown metric or a value that is
    not a number >= 0 is refused (CheckError), naming the valid ones."""
    import difflib
    import math

    tolerance = dict(CHECK_TOLERANCE)
    for item in filter(None, (text or "").split(",")):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not key:
            raise CheckError(f"--tolerance '{item}' is not of the form metric=value (e.g. nll=2.0)")
        if key not in CHECKED_METRICS:
            close = difflib.get_close_matches(key, CHECKED_METRICS, n=1, cutoff=0.6)
            raise CheckError(f"--tolerance: unknown metric '{key}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                             + f"; the gate checks {', '.join(CHECKED_METRICS)}")
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not math.isfinite(number) or number < 0:
            raise CheckError(f"--tolerance {key}={value}: the tolerance must be a number >= 0 "
                             f"(in the metric's units, e.g. {key}={CHECK_TOLERANCE.get(key, 1.0)})")
        tolerance[key] = number
    return tolerance


STATUS_COLUMNS = ["stream", "method", "metric", "reference", "current", "worse by", "tolerance", "status"]


def compare(current, reference, tolerance: dict[str, float], seeds: dict | None = None):
    """One row per reference entry: current mean, change (positive = worse) and status: ok,
    better, REGRESSED, MISSING (no such cell in the results) or FEWER SEEDS (the cell has fewer
    seeds than the reference's mean is over: not judged). `seeds`: {(stream, method): seeds} of
    the results."""
    import pandas as pd

    metrics = columns()
    now = current.set_index(["stream", "method", "metric"])["mean"]
    counts = current.set_index(["stream", "method", "metric"])["n"]
    rows = []
    for _, ref in reference.iterrows():
        key = (ref["stream"], ref["method"], ref["metric"])
        metric = metrics.get(ref["metric"])
        sign = 1.0 if metric is None or metric.lower_is_better else -1.0
        tol = tolerance.get(ref["metric"], 0.0)
        if key not in now.index:
            rows.append([*key, ref["mean"], None, None, tol, "MISSING"])
            continue
        worse_by = sign * (now[key] - ref["mean"])
        if "n" in ref and pd.notna(ref["n"]) and counts[key] < int(ref["n"]):
            status = "FEWER SEEDS"
        else:
            status = "REGRESSED" if worse_by > tol else ("better" if worse_by < -tol else "ok")
        rows.append([*key, ref["mean"], now[key], worse_by, tol, status])
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


def missing_seeds_text(ref, seeds: dict) -> str:
    """'seeds 0 (of the reference's 0 1): missing 1' for a cell with fewer seeds than the reference."""
    have = seeds.get((ref["stream"], ref["method"]), [])
    wanted = str(ref["seeds"]).split() if "seeds" in ref and isinstance(ref["seeds"], str) else None
    if wanted:
        lost = [s for s in wanted if int(s) not in have]
        return f"seed(s) {' '.join(lost)} missing (has {' '.join(map(str, have))}, the reference {' '.join(wanted)})"
    return f"{len(have)} seed(s) ({' '.join(map(str, have))}), the reference's mean is over {int(ref['n'])}"


def check_paths(results: str, reference: str, update: bool) -> None:
    """Refuse a results directory that does not exist or is not one, and a missing reference."""
    path = Path(results)
    if not path.is_dir():
        raise CheckError(f"no results directory '{results}' (run the grid first, e.g. make check, or give "
                         "the --out of a bench.run)")
    if not (path / "records").is_dir():
        raise CheckError(f"'{results}' holds no records/ folder: it is not a results directory of bench.run")
    if not update and not Path(reference).is_file():
        raise CheckError(f"no reference file {reference} (create one from results with --update)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", help="results directory to check (the --out of a bench.run, e.g. "
                                   "results/reference-grid)")
    p.add_argument("--reference", required=True,
                   help="the reference CSV (reports/reference.csv): one mean per profile, stream, method "
                        "and metric, and its seeds")
    p.add_argument("--tolerance", default=None, metavar="METRIC=VALUE,...",
                   help="how much worse than the reference a mean may get, per metric, in its units "
                        "(defaults, declared with each metric in bench/metrics: "
                        + ", ".join(f"{k}={v:g}" for k, v in CHECK_TOLERANCE.items()) + ")")
    p.add_argument("--update", action="store_true",
                   help="rewrite the reference from the results instead of checking (after an intended "
                        "change of numbers)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        tolerance = parse_tolerance(args.tolerance)
        check_paths(args.results, args.reference, args.update)
    except CheckError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    import pandas as pd
    from tabulate import tabulate

    from bench.execution.store import ResultStore
    from bench.reporting.frames import ReportError, select_cells

    records = ResultStore(args.results).records()
    try:
        if args.update:
            reference = reference_from(select_cells(records, None))
            write_atomic(args.reference, reference.to_csv(index=False))
            print(f"wrote {len(reference)} reference values to {args.reference}")
            return 0
        reference = read_reference(args.reference)
        profiles = reference["profile"].unique()
        if len(profiles) != 1:
            raise ReportError(f"the reference mixes profiles: {', '.join(map(str, profiles))}")
        cells = select_cells(records, str(profiles[0]))
        current = reference_from(cells)
        refuse_other_provenance(current, reference)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    seeds = seeds_of(cells)
    result = compare(current, reference, tolerance, seeds)
    shown = result.copy()
    for col in ("reference", "current", "worse by"):
        shown[col] = shown[col].map(lambda v: "-" if pd.isna(v) else f"{v:.2f}")
    print(tabulate(shown.values.tolist(), headers=list(shown.columns), tablefmt="simple",
                   disable_numparse=True))
    extra = current.set_index(["stream", "method", "metric"]).index.difference(
        reference.set_index(["stream", "method", "metric"]).index)
    if len(extra):
        print(f"\nnot in the reference (not checked): {', '.join('/'.join(k) for k in extra)}")
    regressed = result[result["status"] == "REGRESSED"]
    unchecked = result[result["status"].isin(["MISSING", "FEWER SEEDS"])]
    if len(regressed):
        print(f"\n{len(regressed)} regression(s):", file=sys.stderr)
        for _, r in regressed.iterrows():
            print(f"  {r['method']} on {r['stream']}, {r['metric']}: worse by {r['worse by']:.2f} > tolerance "
                  f"{r['tolerance']}", file=sys.stderr)
    if len(unchecked):
        refs = reference.set_index(["stream", "method", "metric"])
        cells_missing = dict.fromkeys((r["stream"], r["method"]) for _, r in unchecked.iterrows())
        print(f"\n{len(cells_missing)} cell(s) of the reference not checked:", file=sys.stderr)
        absent = fewer = 0
        for stream, method in cells_missing:
            rows = unchecked[(unchecked["stream"] == stream) & (unchecked["method"] == method)]
            if (rows["status"] == "MISSING").all():
                detail = "missing from the results"
                absent += 1
            else:
                fewer += 1
                detail = missing_seeds_text(refs.loc[(stream, method, rows["metric"].iloc[0])]
                                            .to_dict() | {"stream": stream, "method": method}, seeds)
            print(f"  {method} on {stream}: {detail}", file=sys.stderr)
        if not len(regressed):
            lacking = " and ".join([*([f"{absent} cell(s)"] if absent else []),
                                    *([f"seeds of {fewer} cell(s)"] if fewer else [])])
            print(f"error: the results lack {lacking} of the reference (listed above): run the reference's "
                  "grid into the results directory (make check does), then check again", file=sys.stderr)
    if len(regressed):
        return 1
    if len(unchecked):
        return 2
    print("\nno regression")
    return 0


if __name__ == "__main__":
    sys.exit(main())
