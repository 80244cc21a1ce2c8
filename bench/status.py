"""`python -m bench.status DIR`: done / running / failed / pending cells of a results directory.

Pending cells are those of the grids run into DIR (`grid.json`) with no record and no live claim;
failed cells are listed with their reasons (`--tracebacks`: with their tracebacks). Exit 0 when
nothing failed or is pending, 1 otherwise, 2 when DIR is not a results directory.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from bench.execution.claims import describe_holder, live_claims
from bench.execution.store import ResultStore
from bench.metrics import primary_metric


def cell_states(store: ResultStore) -> list[dict]:
    manifest = store.manifest()
    records = {r.key: r for r in store.records() if r.key}
    running = live_claims(store.root)
    keys = list(dict.fromkeys([*manifest, *records]))
    rows = []
    for key in keys:
        entry, record = manifest.get(key, {}), records.get(key)
        stem = entry.get("record", "").removesuffix(".json")
        label = entry.get("label") or (f"{record.method}/{record.stream}/seed{record.seed}" if record else key)
        if record and record.done:
            primary = primary_metric()
            state, detail = "done", f"{primary.short or primary.label} {record.metric(primary.name):.2f} on {record.device or 'cpu'}"
        elif stem in running:
            state, detail = "running", describe_holder(running[stem]) + checkpoint_note(store, stem)
        elif record:
            state, detail = "failed", record.error or ""
        else:
            state, detail = "pending", checkpoint_note(store, stem).lstrip("; ")
        rows.append({"cell": label, "state": state, "detail": detail, "key": key,
                     "traceback": record.traceback if state == "failed" and record else None,
                     "path": store.records_dir / entry["record"] if entry.get("record") else None})
    return rows


def checkpoint_note(store: ResultStore, stem: str) -> str:
    """'; task 3 of 5 (checkpoint 12:04:10)': how far a running or interrupted cell got, from the
    note its checkpoint leaves (bench/evaluation/checkpoint.py); '' without one."""
    import json

    path = store.root / "checkpoints" / f"{stem}.progress.json"
    try:
        note = json.loads(path.read_text())
    except (OSError, ValueError):
        return ""
    where = f"task {note['task'] + 1} of {note.get('tasks') or '?'}"
    if note.get("batch"):
        where += f", incoming batch {note['batch'] + 1}"
    return f"; at {where} (checkpoint {str(note.get('at', '')).split('T')[-1]})"


def not_a_results_directory(folder: str) -> str | None:
    """Why `folder` is not a results directory of bench.run (None when it is one)."""
    path = Path(folder)
    if not path.exists():
        return f"no results directory '{folder}' (give the --out of a bench.run, e.g. results)"
    if not path.is_dir():
        return f"'{folder}' is a file, not a results directory (give the --out of a bench.run)"
    if not (path / "grid.json").exists() and not (path / "records").is_dir():
        return (f"'{folder}' is not a results directory of bench.run (no grid.json, no records/): give the "
                "--out of a bench.run")
    return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.status", description=__doc__)
    p.add_argument("results", help="results directory (the --out of a bench.run, e.g. results)")
    p.add_argument("--all", action="store_true", help="list done cells too")
    p.add_argument("--tracebacks", action="store_true", help="print the traceback of every failed cell")
    args = p.parse_args(argv)
    problem = not_a_results_directory(args.results)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from tabulate import tabulate

    rows = cell_states(ResultStore(args.results))
    counts = Counter(r["state"] for r in rows)
    print(", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "running", "failed", "pending")))
    shown = [r for r in rows if args.all or r["state"] != "done"]
    if shown:
        print(tabulate([[r["cell"], r["state"], r["detail"]] for r in shown],
                       headers=["cell", "state", "detail"], tablefmt="simple"))
    traced = [r for r in rows if r["traceback"]]
    if args.tracebacks:
        for r in traced:
            print(f"\n{r['cell']} ({r['path']}):\n{r['traceback'].rstrip()}")
    elif traced:
        print(f"\ntracebacks of the failed cells: python -m bench.status {args.results} --tracebacks")
    return 1 if counts.get("failed") or counts.get("pending") else 0


if __name__ == "__main__":
    sys.exit(main())
