"""The fidelity study's tables from its committed records (reports/fidelity/records/*.json).

    .venv/bin/python reports/fidelity/summarize.py > /tmp/tables.md

Prints Markdown: the paper's Split-MNIST row beside ours at every schedule, the E x lr sweep, the
stream-order comparison, matched compute, and the budgets (memory, steps, images) per cell.
The sweep figures come from `python -m bench.report reports/fidelity --sweep epochs --figures`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tabulate import tabulate

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.execution.store import ResultStore  # noqa: E402
from bench.planning.profiles import split_label  # noqa: E402

HERE = Path(__file__).resolve().parent
# Table 1 of the paper, Split MNIST: log-likelihood (IWAE-1000, nats), memory, components.
PAPER = {"first-k": ("VAE-ELBO-Random", 150.79, "3.0K", 1), "ocm": ("VAE-ELBO-OCM", 132.07, "1.6K", 1),
         "ocm-iw50": ("VAE-IWVAE50-OCM", 127.11, "1.6K", 1),
         "ocm-dynamic": ("Dynamic-ELBO-OCM", 115.89, "1.1K", 5)}
METHOD_ORDER = ["finetune", "first-k", "first-k[train_incoming=true]", "reservoir",
                "reservoir[budget=match:ocm]", "ocm", "ocm-iw50", "ocm-dynamic"]


def frame() -> pd.DataFrame:
    rows = []
    for r in ResultStore(HERE).records():
        if r.get("status") != "done":
            continue
        _, settings = split_label(r["profile_name"])
        schedule = (f"{settings['steps_per_batch']} steps/batch" if "steps_per_batch" in settings
                    else f"E={settings.get('epochs', r['profile']['epochs'])}, lr={r['profile']['lr']:g}")
        rows.append({"stream": r["stream"], "method": r.get("method_label") or r["method"],
                     "schedule": schedule, "nll": r["nll"], "nll_best": r["nll_best_component"],
                     "forgetting": r["forgetting_nll"], "memory": r["memory"], "peak": r.get("memory_peak"),
                     "steps": r.get("gradient_steps"), "images": r.get("images_trained"),
                     "components": r["components"], "selections": r.get("selections"),
                     "budget": (r["method_config"].get("budget") if r.get("matched") else None),
                     "train_s": r["train_seconds"], "wall_s": r["wall_seconds"]})
    cells = pd.DataFrame(rows)
    cells["order"] = cells["method"].map({m: i for i, m in enumerate(METHOD_ORDER)})
    return cells.sort_values(["stream", "order", "schedule"])


SCHEDULES = ["E=1, lr=0.001", "E=3, lr=0.001", "E=10, lr=0.001", "E=10, lr=0.0001"]


def paper_table(cells: pd.DataFrame) -> str:
    shuffled = cells[cells["stream"] == "split-mnist"]
    rows = []
    for method in METHOD_ORDER:
        name, nll, memory, comps = PAPER.get(method, ("-", None, "-", "-"))
        row = [method, name, f"{nll:.2f} / {memory} / {comps}" if nll else "-"]
        for schedule in SCHEDULES:
            hit = shuffled[(shuffled["method"] == method) & (shuffled["schedule"] == schedule)]
            row.append("-" if hit.empty else
                       f"{hit['nll'].iloc[0]:.2f} / {hit['memory'].iloc[0]:.0f} / {hit['components'].iloc[0]}")
        rows.append(row)
    return tabulate(rows, headers=["method", "paper's name", "paper (NLL / memory / comp.)", *SCHEDULES],
                    tablefmt="github", disable_numparse=True)


def pivot(cells: pd.DataFrame, stream: str, schedules: list[str], value: str = "nll") -> str:
    part = cells[(cells["stream"] == stream) & cells["schedule"].isin(schedules)]
    table = part.pivot_table(index="method", columns="schedule", values=value, aggfunc="first")
    table = table.reindex([m for m in METHOD_ORDER if m in table.index])[[s for s in schedules if s in table.columns]]
    return tabulate(table.round(2).reset_index().values.tolist(), headers=["method", *table.columns],
                    tablefmt="github", disable_numparse=True)


def budgets(cells: pd.DataFrame) -> str:
    cols = ["stream", "method", "schedule", "nll", "forgetting", "memory", "peak", "budget", "steps", "images",
            "components", "selections", "train_s"]
    out = cells[cols].copy()
    for c in ("nll", "forgetting"):
        out[c] = out[c].map(lambda v: f"{v:.2f}")
    out["train_s"] = out["train_s"].map(lambda v: f"{v:.0f}")
    for c in ("peak", "budget", "steps", "images", "selections"):
        out[c] = out[c].map(lambda v: "-" if pd.isna(v) else f"{v:.0f}")
    return tabulate(out.values.tolist(), headers=cols, tablefmt="github", disable_numparse=True)


def main() -> None:
    cells = frame()
    print("## Split-MNIST: the paper beside us\n")
    print(paper_table(cells))
    print("\n## NLL against E and lr (split-mnist)\n")
    print(pivot(cells, "split-mnist", SCHEDULES))
    print("\n## Stream order at E=1 (NLL)\n")
    shuffled = cells[(cells["stream"] == "split-mnist") & (cells["schedule"] == "E=1, lr=0.001")]
    ordered = cells[(cells["stream"] == "split-mnist-sorted") & (cells["schedule"] == "E=1, lr=0.001")]
    both = shuffled.set_index("method")[["nll"]].join(ordered.set_index("method")[["nll"]].add_suffix("_sorted"))
    both = both.reindex([m for m in METHOD_ORDER if m in both.index])
    print(tabulate([[m, f"{a:.2f}", f"{b:.2f}", f"{b - a:+.2f}"] for m, (a, b) in both.iterrows()],
                   headers=["method", "shuffled", "sorted (authors')", "sorted - shuffled"],
                   tablefmt="github", disable_numparse=True))
    print("\n## Matched compute (NLL)\n")
    print(pivot(cells, "split-mnist", ["10 steps/batch", "30 steps/batch"]))
    print("\n## Every cell's budget\n")
    print(budgets(cells))


if __name__ == "__main__":
    main()
