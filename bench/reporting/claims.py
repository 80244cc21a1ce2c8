"""The OCM paper's claims, one by one, per stream, tested on the records.

A claim "A beats B" says A's NLL is lower than B's. Per stream, the seeds both methods have are
paired; d = NLL_A - NLL_B per seed (negative supports the claim); the verdict comes from the
two-sided paired t-test over those seeds (significance.paired_p_value, alpha 0.05):
- holds: mean d < 0 and p < alpha;
- fails: mean d > 0 and p < alpha (the opposite is shown);
- cannot tell: p >= alpha, or fewer than 2 paired seeds (no test);
- not run: one of the two methods has no record on the stream.
With 3 seeds the test has 2 degrees of freedom: it shows large, consistent differences only; a
"cannot tell" is not evidence that the two methods are equal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.metrics import primary_metric
from bench.reporting.paper import paper_entry
from bench.reporting.significance import ALPHA, MIN_PAIRS, TEST_NAME, paired_p_value

HOLDS, FAILS, CANNOT_TELL, NOT_RUN = "holds", "fails", "cannot tell", "not run"
HOLM_MARK = "‡"   # the verdict survives Holm's correction over every test of the table


@dataclass(frozen=True)
class Claim:
    better: str      # method label whose NLL the claim says is lower
    worse: str
    source: str      # "paper" or "ours"

    @property
    def text(self) -> str:
        return f"{self.better} < {self.worse}"


# The paper's Table 1: Dynamic-OCM < OCM < Random (first-k as the authors' script codes it, and
# with the incoming batch: reports/fidelity.md), IWVAE50-OCM < OCM, CNDPM < OCM, OCM < LIMix;
# ours (reports/fidelity.md): a true reservoir at OCM's memory beats OCM.
CLAIMS = (
    Claim("ocm-dynamic", "ocm", "paper"),
    Claim("ocm", "first-k", "paper"),
    Claim("ocm", "first-k[train_incoming=true]", "paper"),   # the other reading of "Random"
    Claim("ocm-iw50", "ocm", "paper"),
    Claim("cndpm-paper", "ocm", "paper"),
    Claim("ocm", "limix-paper", "paper"),
    Claim("reservoir[budget=match:ocm]", "ocm", "ours"),
)


def verdict(differences: np.ndarray, alpha: float = ALPHA) -> tuple[str, float]:
    """(verdict, p-value) from the per-seed differences better - worse."""
    if len(differences) < MIN_PAIRS:
        return CANNOT_TELL, float("nan")
    p = paired_p_value(differences, np.zeros_like(differences))
    if p >= alpha:
        return CANNOT_TELL, p
    return (HOLDS if differences.mean() < 0 else FAILS), p


def claims_frame(cells: pd.DataFrame, claims=CLAIMS, metric: str | None = None, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (claim, stream): seeds paired, mean and std of d, p, verdict, and the paper's d.
    `metric`: the primary metric (the NLL) by default."""
    metric = metric or primary_metric().name
    rows = []
    for stream, group in cells.groupby("stream", sort=False):
        per_seed = group.pivot_table(index="seed", columns="method", values=metric, aggfunc="first")
        for claim in claims:
            row = {"claim": claim.text, "source": claim.source, "stream": stream, "n_pairs": 0,
                   "mean_difference": np.nan, "std_difference": np.nan, "p_value": np.nan,
                   "verdict": NOT_RUN, "paper_difference": np.nan}
            ours = [paper_entry(m, stream) for m in (claim.better, claim.worse)]
            if all(ours):
                row["paper_difference"] = ours[0][1] - ours[1][1]
            if claim.better in per_seed and claim.worse in per_seed:
                pairs = per_seed[[claim.better, claim.worse]].dropna()
                d = (pairs[claim.better] - pairs[claim.worse]).to_numpy(float)
                row["n_pairs"] = len(d)
                if len(d):
                    row["mean_difference"] = float(d.mean())
                    row["std_difference"] = float(d.std(ddof=1)) if len(d) > 1 else np.nan
                row["verdict"], row["p_value"] = verdict(d, alpha)
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p_value"].to_numpy(float))
    return frame


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of the p-values over every test the table makes (NaN: no test):
    the i-th smallest of m is multiplied by m - i, then made non-decreasing, capped at 1."""
    out = np.full(len(p), np.nan)
    tested = np.flatnonzero(~np.isnan(p))
    order = tested[np.argsort(p[tested], kind="stable")]
    running = 0.0
    for i, index in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[index]))
        out[index] = running
    return out


def cell_text(row) -> str:
    if row["verdict"] == NOT_RUN:
        return NOT_RUN
    d = f"d = {row['mean_difference']:+.2f}"
    if not np.isnan(row["std_difference"]):
        d += f" ± {row['std_difference']:.2f}"
    p = "" if np.isnan(row["p_value"]) else (", p < 0.001" if row["p_value"] < 0.001 else f", p = {row['p_value']:.3f}")
    paper = "" if np.isnan(row["paper_difference"]) else f" (paper {row['paper_difference']:+.2f})"
    survives = HOLM_MARK if row["verdict"] in (HOLDS, FAILS) and row["p_holm"] < ALPHA else ""
    return f"{row['verdict']}{survives}: {d}{p}{paper}"


def claims_table(cells: pd.DataFrame, fmt_name: str) -> str:
    from bench.reporting.captions import caption
    from bench.reporting.render import plain, render

    frame = claims_frame(cells)
    streams = list(dict.fromkeys(frame["stream"]))
    rows = []
    for (text, source), group in frame.groupby(["claim", "source"], sort=False):
        by_stream = group.set_index("stream")
        rows.append([plain(f"{text}{'' if source == 'paper' else ' (ours)'}", fmt_name),
                     *[plain(cell_text(by_stream.loc[s]), fmt_name) for s in streams]])
    what = ("The OCM paper's claims per stream, A < B: A's NLL is lower. d = NLL_A - NLL_B in nats, "
            f"mean ± std over the seeds both have (negative supports the claim); p: {TEST_NAME} over "
            f"those seeds; holds / fails: p < {ALPHA:g} with d below / above 0; cannot tell: p >= {ALPHA:g} "
            "or fewer than 2 seeds (not evidence of equality); "
            f"{HOLM_MARK}: still p < {ALPHA:g} after Holm's correction over the table's "
            f"{int(frame['p_value'].notna().sum())} tests (the others are one-test verdicts); "
            "(paper d): the same difference in the paper's Table 1 (IWAE-1000, E = 100, full data)")
    return render([plain(h, fmt_name) for h in ("claim", *streams)], rows, fmt_name,
                  caption(cells, what, best_marked=False))


def versus_tables(cells: pd.DataFrame, method: str, fmt_name: str) -> str:
    """`bench.report --versus METHOD`: METHOD against every other row, one table per stream:
    d = NLL(METHOD) - NLL(other) (mean and sd over the seeds both have), the paired p, Holm's mark
    over all the tables' tests, and a verdict in words. A claim per pair, tested as the paper's are."""
    from bench.reporting.captions import caption
    from bench.reporting.frames import ReportError, registry_rank
    from bench.reporting.render import plain, render, stream_heading

    methods = sorted(set(cells["method"]), key=registry_rank)
    if method not in methods:
        raise ReportError(f"--versus {method}: no such row in these records; rows: {', '.join(methods)}")
    claims = [Claim(method, other, "versus") for other in methods if other != method]
    frame = claims_frame(cells, claims)
    frame = frame[frame["verdict"] != NOT_RUN]
    out = []
    for stream, group in frame.groupby("stream", sort=False):
        rows = []
        for _, row in group.iterrows():
            other = row["claim"].split(" < ", 1)[1]
            survives = HOLM_MARK if row["verdict"] in (HOLDS, FAILS) and row["p_holm"] < ALPHA else ""
            words = {HOLDS: f"{method} better", FAILS: f"{method} worse",
                     CANNOT_TELL: "cannot tell" + ("" if row["n_pairs"] >= MIN_PAIRS else " (one seed)")}[row["verdict"]]
            p = "-" if np.isnan(row["p_value"]) else ("< 0.001" if row["p_value"] < 0.001 else f"{row['p_value']:.3f}")
            sd = "-" if np.isnan(row["std_difference"]) else f"{row['std_difference']:.2f}"
            rows.append([plain(x, fmt_name) for x in (other, f"{row['mean_difference']:+.2f}", sd,
                                                      str(int(row["n_pairs"])), p, words + survives)])
        headers = [plain(h, fmt_name) for h in ("against", "d (nats)", "sd", "seeds", "p", "verdict")]
        what = (f"{method} against every other row on {stream}: d = NLL({method}) - NLL(row), mean and sd over "
                f"the seeds both have (negative: {method} better); p: {TEST_NAME}; verdict at p < {ALPHA:g}; "
                f"{HOLM_MARK}: still so after Holm's correction over the {int(frame['p_value'].notna().sum())} tests "
                "of these tables")
        out.append(stream_heading(stream, fmt_name)
                   + render(headers, rows, fmt_name, caption(cells[cells["stream"] == stream], what, best_marked=False)))
    return "\n".join(out)
