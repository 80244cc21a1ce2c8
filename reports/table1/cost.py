"""What the Table-1 grid cost (reports/table1.md, "Cost"): CPU-hours per method and stream from the
records' own wall, train and evaluation seconds, and the costliest cells.

    python reports/table1/cost.py [--format markdown|text] [--top 10]

A cell is one worker process on one core (one torch thread), so a cell's wall seconds are its
core-seconds; the machine ran 1-2 cells at once beside other work, so cells are slower than on an
idle machine and compare loosely.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.execution.store import ResultStore  # noqa: E402


def cost_frame(records: list[dict]) -> pd.DataFrame:
    rows = [{"method": r.get("method_label", r["method"]), "stream": r["stream"], "seed": r["seed"],
             "wall_s": r.get("wall_seconds", 0.0), "train_s": r.get("train_seconds", 0.0),
             "eval_s": r.get("eval_seconds", 0.0)} for r in records if r.get("status") == "done"]
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--format", default="markdown", choices=("markdown", "text"))
    p.add_argument("--top", type=int, default=10)
    args = p.parse_args(argv)
    fmt = "github" if args.format == "markdown" else "simple"
    frame = cost_frame(ResultStore(Path(__file__).parent).records())
    per = frame.pivot_table(index="method", columns="stream", values="wall_s", aggfunc="sum") / 3600
    per["all streams"] = per.sum(axis=1)
    per = per.sort_values("all streams", ascending=False)
    per.loc["all methods"] = per.sum(axis=0)
    print(f"CPU-hours (sum of the cells' wall seconds over seeds), {len(frame)} cells, "
          f"{frame['wall_s'].sum() / 3600:.2f} h in all ({frame['train_s'].sum() / 3600:.2f} h training, "
          f"{frame['eval_s'].sum() / 3600:.2f} h evaluation):\n")
    shown = per.map(lambda h: "-" if pd.isna(h) else f"{h:.2f}")
    print(tabulate(shown.reset_index(), headers="keys", tablefmt=fmt, showindex=False, disable_numparse=True,
                   colalign=("left",) + ("right",) * len(shown.columns)))
    top = frame.sort_values("wall_s", ascending=False).head(args.top)
    print(f"\nThe {args.top} costliest cells (seconds):\n")
    print(tabulate(top.round(0), headers="keys", tablefmt=fmt, floatfmt=".0f", showindex=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
