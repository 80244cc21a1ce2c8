"""`python -m bench.reproduce`: does the regression grid give the same numbers however it is run?

Runs the regression grid (`make check`'s: every method on `mini`, seeds 0 and 1, smoke profile) once
as shipped and once per variant, each in a fresh process, and compares every cell's numbers with
the shipped run's: identical to the bit, or the largest difference. Variants:

- the parent process with 2 torch threads instead of 1 (workers always use one);
- the training step eager instead of fused (`--training-step eager`);
- the evaluator's C kernel off (BENCH_NATIVE_KERNEL=0: the torch form of the decoder likelihood);
- CPU kernels as an unpinned AVX-512 machine and a machine without AVX2 would run them
  (ATEN_CPU_CAPABILITY=avx512 / default; bench/__init__.py pins AVX2);
- with FID on the shipped classifier's features (fid_samples 200), as shipped and with 2 parent
  threads: FID, KID and precision/recall/density/coverage too.

The result is a section of reports/reliability.md (`--out`), between markers, so that
`python -m bench.faults` and this tool each rewrite only their own part.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import REPO_ROOT
from bench.metrics import checked

GRID = ["--methods", "all", "--streams", "mini", "--seeds", "0,1", "--profile", "smoke", "--no-progress",
        "--workers", "2"]
FID = ["--set", "fid_features=classifier", "--set", "fid_samples=200", "--set", "eval_test_per_task=128"]
# every number the gate checks (the registry's checked columns: metrics and recorded summaries)
NUMBERS = tuple(checked())
# name -> (extra arguments, environment, parent torch threads, what it changes)
VARIANTS = {
    "parent with 2 threads": ([], {}, 2, "torch threads of the bench.run process"),
    "eager training step": (["--training-step", "eager"], {}, 1, "step mode"),
    "C kernel off": ([], {"BENCH_NATIVE_KERNEL": "0"}, 1, "evaluator's decoder likelihood in torch"),
    "AVX-512 kernels (unpinned)": ([], {"ATEN_CPU_CAPABILITY": "avx512"}, 1, "ATen's CPU kernel level"),
    "scalar kernels (no AVX2)": ([], {"ATEN_CPU_CAPABILITY": "default"}, 1, "ATen's CPU kernel level"),
}
FID_VARIANTS = {"parent with 2 threads, FID on": (FID, {}, 2, "torch threads of the bench.run process")}
START, END = "<!-- reproducibility: start -->", "<!-- reproducibility: end -->"


def run_grid(out: Path, extra: list[str], env: dict, threads: int, grid: list[str] = GRID) -> dict[str, dict]:
    """The grid in a fresh process; {cell label: its numbers}."""
    code = (f"import sys, torch; torch.set_num_threads({threads}); from bench.run import main; "
            "sys.exit(main(sys.argv[1:]))")
    proc = subprocess.run([sys.executable, "-c", code, *grid, *extra, "--out", str(out)], cwd=REPO_ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"the grid failed ({proc.returncode}): {proc.stderr[-1500:]}")
    cells = {}
    for path in (out / "records").glob("*.json"):
        record = json.loads(path.read_text())
        cells[f"{record['method_label']}/seed{record['seed']}"] = {k: record.get(k) for k in NUMBERS}
    return cells


def compare(base: dict[str, dict], other: dict[str, dict]) -> dict:
    """Cells identical to the bit, and the largest absolute difference per number."""
    identical, largest, worst = 0, {}, {}
    for cell, numbers in base.items():
        theirs = other.get(cell, {})
        same = True
        for key, value in numbers.items():
            if value is None or theirs.get(key) is None:
                continue
            diff = abs(float(theirs[key]) - float(value))
            same &= diff == 0 or (math.isnan(diff) and math.isnan(value))
            if diff > largest.get(key, 0.0):
                largest[key], worst[key] = diff, cell
        identical += same
    return {"cells": len(base), "identical": identical, "largest": largest, "where": worst}


def measure(folder: Path) -> dict:
    base = run_grid(folder / "shipped", [], {}, 1)
    rows = {name: compare(base, run_grid(folder / name.replace(" ", "-"), extra, env, threads))
            | {"what": what} for name, (extra, env, threads, what) in VARIANTS.items()}
    fid_base = run_grid(folder / "shipped-fid", FID, {}, 1)
    rows |= {name: compare(fid_base, run_grid(folder / name.replace(" ", "-"), extra, env, threads))
             | {"what": what} for name, (extra, env, threads, what) in FID_VARIANTS.items()}
    return rows


def markdown(rows: dict) -> str:
    from tabulate import tabulate

    table = []
    for name, row in rows.items():
        largest = ", ".join(f"{k} {v:.3g} ({row['where'][k]})" for k, v in row["largest"].items() if v)
        table.append([name, row["what"], f"{row['identical']}/{row['cells']}", largest or "none"])
    return "\n".join([
        START, "## Reproducibility: the regression grid run other ways", "",
        "Made by `python -m bench.reproduce` (bench/reproduce.py): every method on `mini`, seeds 0 and "
        "1, smoke profile (the regression gate's grid), each way in a fresh process, compared with "
        "the run as shipped (AVX2 kernels pinned, fused step, C kernel, one parent thread; FID rows: "
        "with FID on the shipped classifier, fid_samples 200). A cell is identical when every number "
        "(NLL, best-component NLL, NLL forgetting, and FID, KID, P/R/D/C where on) is equal to the bit.", "",
        tabulate(table, headers=["run", "what changes", "cells identical", "largest difference (cell)"],
                 tablefmt="github"), "", END, ""])


def write_section(path: Path, section: str) -> None:
    """Put `section` in place of the markers' block of `path` (appended if it has none)."""
    text = path.read_text() if path.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reproduce", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="reports/reliability.md", help="the report whose section is rewritten")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-reproduce-") as folder:
        rows = measure(Path(folder))
    write_section(Path(args.out), markdown(rows))
    Path(args.out).with_name("reproducibility.json").write_text(json.dumps(rows, indent=1))
    print(f"wrote the reproducibility section of {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
