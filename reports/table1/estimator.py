"""How much the estimator and the test subset move the NLL (reports/table1.md, "Subsampling and
the estimator"): one trained model per method, scored the quick way (IWAE-100 on 500 test images
per task, as every Table-1 cell) and the paper's way (IWAE-1000 on every test image).

Each method's Split-MNIST seed-0 cell of the Table-1 grid is trained again, with the grid's exact
settings, so its record must equal the grid's to the last digit (training and evaluation are
seeded: `same_as_grid` checks every number); then its final model is scored again both ways with
fresh seeded generators (so the quick score here is a second draw of the same estimator, and the
difference between the two draws is the estimator's own noise). Writes one JSON per method to
reports/table1/estimator/ (committed; a method with a result is skipped: rerunning resumes).

    python reports/table1/estimator.py [--methods ocm,reservoir] [--full-images N]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import bench  # noqa: E402,F401  (pins the CPU kernels first)

# isort: split
import torch  # noqa: E402

from bench.evaluation.cell import record_header, train_and_evaluate  # noqa: E402
from bench.evaluation.nll import nll_row  # noqa: E402
from bench.execution.store import ResultStore  # noqa: E402
from bench.planning.grid import expand_grid, resolve_matches  # noqa: E402
from bench.planning.profiles import resolve_profile  # noqa: E402

OUT = Path(__file__).parent / "estimator"
FAMILIES = "first-k,reservoir,ocm,ocm-dynamic,cndpm-paper,limix-paper,lgm,curl,finetune,joint"
COMPARED = ("nll", "nll_best_component", "fid", "kid", "memory", "memory_peak", "gradient_steps",
            "images_trained", "components", "nll_matrix")


def grid_record(cell) -> dict | None:
    for record in ResultStore(ROOT / "reports" / "table1").records():
        if record.get("key") == cell.key and record.get("status") == "done":
            return record
    return None


def score(model, test_sets, k: int, seed: int) -> dict:
    start = time.perf_counter()
    row = nll_row(model, test_sets, k, torch.Generator().manual_seed(seed))
    mixture, best = torch.cat(row.mixture), torch.cat(row.best_component)
    return {"estimator": f"IWAE-{k}", "test_images": len(mixture), "nll": float(mixture.mean()),
            "nll_se": float(mixture.double().std() / len(mixture) ** 0.5),
            "nll_best_component": float(best.mean()), "seconds": round(time.perf_counter() - start, 1)}


def run(method: str, full_images: int | None) -> dict:
    profile = resolve_profile("quick", ["max_train_per_task=4000", "sample_grids=false"])
    cell = expand_grid([method], ["split-mnist"], [0], profile)[0]
    records = ResultStore(ROOT / "reports" / "table1").records()
    cell = resolve_matches(cell, records)
    scores = {}

    def on_trained(model, stream):
        quick = [stream.test_images(t, profile.eval_test_per_task) for t in range(len(stream.tasks))]
        full = [stream.test_images(t, None) for t in range(len(stream.tasks))]
        if full_images:   # an even share of each task's fixed test order
            full = [x[:full_images // len(full)] for x in full]
        scores["quick_again"] = score(model, quick, profile.eval_k, 1)
        scores["paper"] = score(model, full, 1000, 1)
        scores["quick_on_paper_images"] = score(model, full, profile.eval_k, 1)

    start = time.time()
    record = {**record_header(cell), **train_and_evaluate(cell, on_trained=on_trained)}
    grid = grid_record(cell)
    same = None if grid is None else {k: record.get(k) == grid.get(k) for k in COMPARED}
    return {"method": cell.label_method, "stream": cell.stream, "seed": cell.seed, "key": cell.key,
            "profile": profile.name, "record_nll": record["nll"], "components": record["components"],
            "same_as_grid": same, **scores, "wall_seconds": round(time.time() - start, 1)}


def table() -> str:
    """The results so far as a Markdown table (reports/table1/tables/estimator.md)."""
    from tabulate import tabulate

    rows = []
    for path in sorted(OUT.glob("*.json")):
        r = json.loads(path.read_text())
        quick, again, paper, wide = r["record_nll"], r["quick_again"], r["paper"], r["quick_on_paper_images"]
        same = r["same_as_grid"]
        rows.append([r["method"], r["components"], f"{quick:.2f}", f"{again['nll']:.2f}",
                     f"{wide['nll']:.2f} ± {wide['nll_se']:.2f}", f"{paper['nll']:.2f} ± {paper['nll_se']:.2f}",
                     f"{paper['nll'] - quick:+.2f}", f"{paper['nll_best_component']:.2f}" if r["components"] > 1 else "-",
                     "yes" if same and all(same.values()) else f"no: {[k for k, v in (same or {}).items() if not v]}",
                     f"{paper['seconds']:.0f}"])
    headers = ["method", "comp.", "grid (IWAE-100, 500/task)", "again, other draws", "IWAE-100, all 10,000",
               "IWAE-1000, all 10,000 (paper's)", "paper's - grid", "IWAE-1000 best comp.",
               "retrained = grid record", "IWAE-1000 s"]
    return tabulate(rows, headers, tablefmt="github", disable_numparse=True) + (
        "\n\nSplit-MNIST, seed 0, each method's Table-1 cell retrained (quick profile, 4,000 images per "
        "task) and its final model scored three ways; ± is the standard error over test images. "
        "`python reports/table1/estimator.py`.\n")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--methods", default=FAMILIES)
    p.add_argument("--full-images", type=int, default=None,
                   help="score the paper's way on this many test images (default: all)")
    p.add_argument("--table", action="store_true", help="print the results so far as Markdown, run nothing")
    args = p.parse_args(argv)
    if args.table:
        print(table(), end="")
        return 0
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for method in args.methods.split(","):
        path = OUT / f"{method.replace('[', '_').replace(']', '').replace('=', '-')}.json"
        if path.exists():
            continue
        result = run(method, args.full_images)
        path.write_text(json.dumps(result, indent=1))
        print(f"{method}: quick {result['record_nll']:.2f}, paper's way {result['paper']['nll']:.2f} "
              f"({result['paper']['seconds']} s), same as the grid: {result['same_as_grid']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
