"""`python -m bench.status DIR`: done / running / failed / pending cells of a results directory.

Pending cells are those of the grids run into DIR (`grid.json`) with no record and no live claim;
failed cells are listed with their reasons. Exit 0 when nothing failed or is pending, else 1.
"""
from __future__ import annotations

import argparse
import sys
from collections import Counter

from tabulate import tabulate

from bench.execution.claims import live_claims
from bench.execution.store import ResultStore


def cell_states(store: ResultStore) -> list[dict]:
    manifest = store.manifest()
    records = {r["key"]: r for r in store.records() if "key" in r}
    running = live_claims(store.root)
    keys = list(dict.fromkeys([*manifest, *records]))
    rows = []
    for key in keys:
        entry, record = manifest.get(key, {}), records.get(key)
        stem = entry.get("record", "").removesuffix(".json")
        label = entry.get("label") or (f"{record['method']}/{record['stream']}/seed{record['seed']}" if record else key)
        if record and record.get("status") == "done":
            state, detail = "done", f"NLL {record['nll']:.2f} on {record.get('device', 'cpu')}"
        elif stem in running:
            state, detail = "running", f"pid {running[stem].get('pid')} on {running[stem].get('host')}"
        elif record:
            state, detail = "failed", record.get("error", "")
        else:
            state, detail = "pending", ""
        rows.append({"cell": label, "state": state, "detail": detail, "key": key})
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.status", description=__doc__)
    p.add_argument("results")
    p.add_argument("--all", action="store_true", help="list done cells too")
    args = p.parse_args(argv)
    rows = cell_states(ResultStore(args.results))
    counts = Counter(r["state"] for r in rows)
    print(", ".join(f"{counts.get(s, 0)} {s}" for s in ("done", "running", "failed", "pending")))
    shown = [r for r in rows if args.all or r["state"] != "done"]
    if shown:
        print(tabulate([[r["cell"], r["state"], r["detail"]] for r in shown],
                       headers=["cell", "state", "detail"], tablefmt="simple"))
    return 1 if counts.get("failed") or counts.get("pending") else 0


if __name__ == "__main__":
    sys.exit(main())
