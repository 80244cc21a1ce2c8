"""The schedule study's tables and figure (reports/schedule.md), from the committed records.

E = 1 is the Table-1 study (reports/table1/records); E = 3, 10, ... are reports/schedule/records.
Every schedule is one profile label (`quick[epochs=3,max_train_per_task=4000,sample_grids=false]`,
lr 1e-3 unless the label says lr=0.0001); its claims are tested by the same code as Table 1's
(bench/reporting/claims.py: paired t-test over seeds, Holm's correction over that schedule's
table). Writes, into reports/schedule/tables/:
  claims.md   per claim, per stream: the verdict at each schedule (d ± sd, p, Holm's mark)
  claims.csv  the same, one row per (schedule, claim, stream)
  flips.md    the verdicts that change with the schedule, and where
  nll.md      mean NLL ± sd per method, stream and schedule
  cost.md     CPU-hours per method row and schedule
and the figure reports/schedule/figures/claims-against-E.png (d against E, per claim and stream);
then refreshes the tables embedded in reports/schedule.md.

    python reports/schedule/summarize.py
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from bench.execution.store import ResultStore  # noqa: E402
from bench.planning.profiles import split_label  # noqa: E402
from bench.reporting.claims import CLAIMS, cell_text, claims_frame, holm  # noqa: E402
from bench.reporting.frames import select_cells  # noqa: E402
from streams.files import write_atomic  # noqa: E402

HERE = Path(__file__).parent
BASE = "max_train_per_task=4000,sample_grids=false"   # the Table-1 setting every schedule shares
STREAMS = ("split-mnist", "split-fashion", "mnist-fashion")


def schedule_of(profile_name: str) -> tuple[int, float] | None:
    """(E, lr) of a profile label of this study (None for another profile)."""
    base, settings = split_label(profile_name)
    if base != "quick" or settings.get("max_train_per_task") != "4000" or settings.get("sample_grids") != "false":
        return None
    if set(settings) - {"max_train_per_task", "sample_grids", "epochs", "lr"}:
        return None
    return int(settings.get("epochs", 1)), float(settings.get("lr", 0.001))


def schedule_text(schedule: tuple[int, float]) -> str:
    epochs, lr = schedule
    return f"E = {epochs}, lr {lr:g}"


def load() -> tuple[dict, dict]:
    """({(E, lr): that schedule's cells}, {(E, lr): its records}) over the Table-1 and the
    schedule records."""
    records = ResultStore(ROOT / "reports/table1").records() + ResultStore(HERE).records()
    by_schedule: dict = {}
    for r in records:
        schedule = schedule_of(r.profile_name or "")
        if schedule is not None and r.done:
            by_schedule.setdefault(schedule, []).append(r)
    by_schedule = dict(sorted(by_schedule.items()))
    return {s: select_cells(rs, None) for s, rs in by_schedule.items()}, by_schedule


def claims_over_schedules(cells: dict) -> pd.DataFrame:
    """One row per (schedule, claim, stream): claims_frame's columns, Holm within each schedule."""
    frames = []
    for schedule, group in cells.items():
        frame = claims_frame(group)
        frame = frame[frame["verdict"] != "not run"].copy()
        frame["p_holm"] = holm(frame["p_value"].to_numpy(float))   # over the tests this schedule made
        frame["epochs"], frame["lr"] = schedule
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def verdict_text(row) -> str:
    """The claims table's own cell text (bench/reporting/claims.py): d with its 95% interval, p, Holm."""
    return cell_text(row).replace(f" (paper {row['paper_difference']:+.2f})", "")


def claims_markdown(frame: pd.DataFrame) -> str:
    schedules = sorted({(e, lr) for e, lr in zip(frame["epochs"], frame["lr"])})
    out = []
    for claim in dict.fromkeys(frame["claim"]):
        rows = []
        group = frame[frame["claim"] == claim]
        for stream in STREAMS:
            cells = []
            for schedule in schedules:
                hit = group[(group["stream"] == stream) & (group["epochs"] == schedule[0]) & (group["lr"] == schedule[1])]
                cells.append(verdict_text(hit.iloc[0]) if len(hit) else "not run")
            rows.append(f"| {stream} | " + " | ".join(cells) + " |")
        paper = group["paper_difference"].dropna()
        source = group["source"].iloc[0]
        out.append(f"**{claim}**{'' if source == 'paper' else ' (ours)'}"
                   + (f" (the paper's d: {paper.iloc[0]:+.2f}; E = 100, lr 1e-4, full data, IWAE-1000)" if len(paper) else "")
                   + "\n\n| stream | " + " | ".join(schedule_text(s) for s in schedules) + " |\n|---|"
                   + "---|" * len(schedules) + "\n" + "\n".join(rows) + "\n")
    return "\n".join(out)


def flips_markdown(frame: pd.DataFrame) -> str:
    """Per claim and stream, the schedules at which the verdict differs from E = 1's."""
    lines = ["| claim | stream | E = 1 | changed at |", "|---|---|---|---|"]
    for (claim, stream), group in frame.groupby(["claim", "stream"], sort=False):
        group = group.sort_values(["lr", "epochs"], ascending=[False, True])
        first = group[(group["epochs"] == 1) & (group["lr"] == 0.001)]
        if first.empty:
            continue
        base = first.iloc[0]["verdict"]
        changed = [f"{schedule_text((r['epochs'], r['lr']))}: {r['verdict']} ({r['mean_difference']:+.2f})"
                   for _, r in group.iterrows() if r["verdict"] != base and (r["epochs"], r["lr"]) != (1, 0.001)]
        lines.append(f"| {claim} | {stream} | {base} ({first.iloc[0]['mean_difference']:+.2f}) | "
                     f"{'; '.join(changed) if changed else 'none'} |")
    return "\n".join(lines) + "\n"


def nll_markdown(cells: dict) -> str:
    methods = ["ocm", "ocm-dynamic", "reservoir[budget=match:ocm]", "ocm-iw50", "cndpm-paper", "limix-paper",
               "first-k[train_incoming=true]"]
    lines = ["| method | stream | " + " | ".join(schedule_text(s) for s in cells) + " |",
             "|---|---|" + "---|" * len(cells)]
    for method in methods:
        for stream in STREAMS:
            texts = []
            for group in cells.values():
                values = group[(group["method"] == method) & (group["stream"] == stream)]["nll"]
                texts.append("-" if values.empty else f"{values.mean():.2f} ± {values.std(ddof=1):.2f} (n={len(values)})"
                             if len(values) > 1 else f"{values.mean():.2f} (n=1)")
            if any(t != "-" for t in texts):
                lines.append(f"| {method} | {stream} | " + " | ".join(texts) + " |")
    return "\n".join(lines) + "\n"


def cost_markdown(records: dict) -> str:
    """CPU-hours (the cells' wall seconds, each cell one thread) per method row and schedule."""
    lines = ["| method | " + " | ".join(schedule_text(s) for s in records) + " |", "|---|" + "---|" * len(records)]
    methods = dict.fromkeys(r.label for group in records.values() for r in group)
    for method in methods:
        hours = [sum(r.wall_seconds or 0 for r in group if r.label == method) / 3600 for group in records.values()]
        lines.append(f"| {method} | " + " | ".join(f"{h:.2f}" if h else "-" for h in hours) + " |")
    totals = [sum(r.wall_seconds or 0 for r in group) / 3600 for group in records.values()]
    lines.append("| all rows | " + " | ".join(f"{t:.2f}" for t in totals) + " |")
    return "\n".join(lines) + "\n"


def figure(frame: pd.DataFrame, path: Path) -> None:
    """d against E, one panel per (claim, stream): lr 1e-3 filled, lr 1e-4 open, seed sd as bars;
    the paper's d at E = 100 as a star."""
    claims = [c.text for c in CLAIMS if c.text in set(frame["claim"])]
    claims = [c for c in claims if frame[frame["claim"] == c]["epochs"].nunique() > 1] or claims
    fig, axes = plt.subplots(len(claims), len(STREAMS), figsize=(4.2 * len(STREAMS), 2.6 * len(claims)),
                             squeeze=False, sharex=True)
    for i, claim in enumerate(claims):
        for j, stream in enumerate(STREAMS):
            ax = axes[i][j]
            group = frame[(frame["claim"] == claim) & (frame["stream"] == stream)]
            for lr, style in ((0.001, dict(marker="o", color="C0")), (0.0001, dict(marker="s", color="C3", mfc="none"))):
                rows = group[group["lr"] == lr].sort_values("epochs")
                if len(rows):
                    ax.errorbar(rows["epochs"], rows["mean_difference"], yerr=rows["std_difference"].fillna(0),
                                capsize=3, label=f"lr {lr:g}", **style)
            paper = group["paper_difference"].dropna()
            if len(paper):
                ax.plot([100], [paper.iloc[0]], marker="*", markersize=12, color="k", linestyle="none",
                        label="paper (E = 100)")
            ax.axhline(0, color="grey", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_xticks([1, 3, 10, 30, 100], ["1", "3", "10", "30", "100"])
            if i == 0:
                ax.set_title(stream)
            if j == 0:
                ax.set_ylabel(f"{claim}\nd (nats)", fontsize=8)
            if i == len(claims) - 1:
                ax.set_xlabel("E (passes per incoming batch)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper right", fontsize=8)
    fig.suptitle("d = NLL(A) - NLL(B) against the schedule (A < B holds below 0); mean ± seed sd", fontsize=10)
    fig.tight_layout(rect=(0, 0, 0.93, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> int:
    cells, records = load()
    frame = claims_over_schedules(cells)
    tables = HERE / "tables"
    write_atomic(tables / "claims.md", claims_markdown(frame))
    write_atomic(tables / "claims.csv", frame.to_csv(index=False))
    write_atomic(tables / "flips.md", flips_markdown(frame))
    write_atomic(tables / "nll.md", nll_markdown(cells))
    write_atomic(tables / "cost.md", cost_markdown(records))
    figure(frame, HERE / "figures" / "claims-against-E.png")
    print(f"schedules: {', '.join(schedule_text(s) for s in cells)}; tables in {tables}", file=sys.stderr)
    sys.path.insert(0, str(ROOT / "reports" / "table1"))
    from include import refresh  # the page's generated blocks, as reports/table1.md's

    refresh(ROOT / "reports" / "schedule.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
