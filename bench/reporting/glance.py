"""The answer first: per stream, the methods ranked, and which gaps to the best are real.

A reader's first question of a study is "which method is best here, and is the gap real". Per
stream, the methods that learn without task boundaries are ranked by the mean of a metric (the
primary, NLL, by default); each is compared with the stream's best of them by the paired test of
the claims table (claims.claims_frame: seeds paired, two-sided paired t-test), Holm-corrected over
every comparison of the page's table. The rows that need task boundaries (joint, LGM, the
regularizers...) are references of another protocol: ranked apart, below, never "the best".

A verdict needs MIN_SEEDS paired seeds: with two, a t-test has one degree of freedom and a
"cannot tell" means nothing, so the table says "not enough seeds" instead of a mark.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics import primary_metric
from bench.reporting.claims import CANNOT_TELL, FAILS, HOLDS, Claim, claims_frame
from bench.reporting.frames import COLUMNS, summary_frame
from bench.reporting.intervals import p_text
from bench.reporting.render import BOUNDARY_MARK, plain, render
from bench.reporting.significance import ALPHA, TEST_NAME

MIN_SEEDS = 3
BEST, REAL, NOT_AFTER_HOLM, TIED, FEW_SEEDS = ("best", "worse (real)", "worse (one test; not after Holm)",
                                                "cannot tell from the best", "not enough seeds")


def glance_frame(cells: pd.DataFrame, metric: str | None = None) -> pd.DataFrame:
    """One row per (stream, method): `group` ('continual' or 'reference'), `rank` within its group,
    mean, std and n of the metric, and for continual rows d (row - best, mean over paired seeds),
    its p, Holm's p over the table and a `verdict`."""
    column = COLUMNS[metric or primary_metric().name]
    summary = summary_frame(cells)
    mean, std = f"{column.column}_mean", f"{column.column}_std"
    rows, claims = [], []
    for stream, group in summary.groupby("stream", sort=False):
        group = group[group[mean].notna()]
        for reference, part in group.groupby("needs_task_boundaries", sort=True):
            ordered = part.sort_values(mean, ascending=column.lower_is_better, kind="stable")
            best = ordered["method"].iloc[0]
            for rank, (_, row) in enumerate(ordered.iterrows(), 1):
                rows.append({"stream": stream, "method": row["method"],
                             "group": "reference" if reference else "continual", "rank": rank,
                             "mean": row[mean], "std": row[std], "n": int(row["n"]), "best": best})
                if not reference and row["method"] != best:
                    claims.append((stream, Claim(best, row["method"], "glance")))
    frame = pd.DataFrame(rows)
    tests = pd.concat([claims_frame(cells[cells["stream"] == s], [c], metric=column.column)
                       for s, c in claims]) if claims else pd.DataFrame()
    if not tests.empty:   # Holm over the whole table's comparisons, not per stream
        from bench.reporting.claims import holm

        tests["p_holm"] = holm(tests["p_value"].to_numpy(float))
        tests["method"] = tests["claim"].str.split(" < ", n=1).str[1]
        frame = frame.merge(tests[["stream", "method", "n_pairs", "mean_difference", "p_value", "p_holm",
                                   "verdict"]], on=["stream", "method"], how="left")
    else:
        frame = frame.assign(n_pairs=np.nan, mean_difference=np.nan, p_value=np.nan, p_holm=np.nan,
                             verdict=None)
    frame["mean_difference"] = -frame["mean_difference"]   # the claim's best - row, as row - best
    frame["answer"] = [answer(r) for _, r in frame.iterrows()]
    frame["tier"] = tiers(cells, frame, column.column)
    return frame


def tiers(cells: pd.DataFrame, frame: pd.DataFrame, metric: str) -> list[int | None]:
    """Per stream, the continual rows in tiers the data separate: down the ranking, a row joins
    the current tier while its paired test against the tier's leader (its first row) cannot tell
    them apart (or has fewer than MIN_SEEDS seeds), else it leads the next tier. References: None."""
    out: dict[int, int] = {}
    for stream, group in frame[frame["group"] == "continual"].groupby("stream", sort=False):
        ordered = group.sort_values("rank")
        leader, tier = None, 0
        for index, row in ordered.iterrows():
            if leader is not None:
                test = claims_frame(cells[cells["stream"] == stream], [Claim(leader, row["method"], "tier")],
                                    metric=metric).iloc[0]
                separated = test["n_pairs"] >= MIN_SEEDS and test["verdict"] in (HOLDS, FAILS)
            if leader is None or separated:
                leader, tier = row["method"], tier + 1
            out[index] = tier
    return [out.get(i) for i in frame.index]


def answer(row) -> str:
    if row["group"] == "reference":
        return ""
    if row["method"] == row["best"]:
        return BEST
    if row["n_pairs"] < MIN_SEEDS:
        return f"{FEW_SEEDS} ({int(row['n_pairs'])} paired)"
    if row["verdict"] in (HOLDS, FAILS):   # the best is lower (HOLDS) by construction of the order
        return REAL if row["p_holm"] < ALPHA else NOT_AFTER_HOLM
    return TIED if row["verdict"] == CANNOT_TELL else str(row["verdict"])


def glance_tables(cells: pd.DataFrame, fmt_name: str, metric: str | None = None) -> dict[str, str]:
    """Per stream, its table (rendered for `fmt_name`): continual rows ranked with their verdict,
    then the reference rows."""
    column = COLUMNS[metric or primary_metric().name]
    frame = glance_frame(cells, column.column)
    digits = column.digits if column.digits is not None else 2
    out = {}
    for stream, group in frame.groupby("stream", sort=False):
        rows = []
        for _, r in group.iterrows():
            spread = "" if np.isnan(r["std"]) else f" ± {r['std']:.{digits}f}"
            value = f"{r['mean']:.{digits}f}{spread} (n={r['n']})"
            d = "" if np.isnan(r["mean_difference"]) else f"{r['mean_difference']:+.{digits}f}"
            label = r["method"] + (f" {BOUNDARY_MARK}" if r["group"] == "reference" else "")
            rank = str(r["rank"]) if r["group"] == "continual" else f"ref. {r['rank']}"
            tier = "" if r["tier"] is None or pd.isna(r["tier"]) else str(int(r["tier"]))
            rows.append([plain(x, fmt_name) for x in (rank, tier, label, value, d, p_text(r["p_holm"]), r["answer"])])
        headers = [plain(h, fmt_name) for h in ("rank", "tier", "method", f"{column.label} (mean ± std)",
                                                "d to best", "p (Holm)", "verdict")]
        what = (f"{stream}: the methods without task boundaries ranked by mean {column.label} "
                f"({'lower' if column.lower_is_better else 'higher'} is better), each against the best of them: "
                f"d = row - best over the seeds both have; p: {TEST_NAME}, Holm-corrected over the "
                f"{int(frame['p_value'].notna().sum())} comparisons of these tables; real: p < {ALPHA:g} after "
                f"Holm; fewer than {MIN_SEEDS} paired seeds: not enough to tell; tier: down the ranking, a row stays "
                f"in its tier while a paired test at {ALPHA:g} cannot tell it from the tier's first row (no "
                f"correction: tiers err towards splitting). Rows marked {BOUNDARY_MARK} need "
                "task boundaries (another protocol): references, ranked apart")
        out[stream] = render(headers, rows, fmt_name, what)
    return out
