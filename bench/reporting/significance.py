"""Which differences are real: paired tests over seeds against each column's best, and ranks.

`paired_tests(cells, metric)`: per stream, every method against the stream's best method (the best
mean, as `frames.best_methods` picks it), paired by seed: only the seeds both have (and where both
have the metric: a missing FID is NaN and drops that pair). The test is scipy's two-sided paired
t-test (`ttest_rel`) at ALPHA = 0.05; a method is *indistinguishable from the best* when p >= alpha.

Why a t-test and not a paired bootstrap: runs have 2-5 seeds. A paired bootstrap of n differences
has at most n^n resamples (4 for n = 2) and its percentile interval is too narrow at small n (it
ignores the t-distribution's heavy tails and the (n-1)/n shrinkage of the plug-in variance): with
two seeds whose differences share a sign it calls any gap "real". The t-test's small-sample
correction (df = n - 1) is exactly what is needed here, and it is exact if the seed-to-seed
differences are normal.

Limits, said in the caption and here: with 2-5 seeds the test has little power, so "≈" means "not
shown to differ", never "equal"; it assumes roughly normal differences; there is no correction for
testing several methods per column (which makes "differs" a little too easy to get), and the best
is itself chosen from the same data. With fewer than 2 common seeds there is no test ("not
tested", no mark). Zero variance of the differences (where the t statistic is undefined): all
differences 0 -> indistinguishable (p = 1); a constant nonzero difference -> distinguishable (p = 0).

`average_ranks(cells, metric)`: per stream, rank 1 = best mean (ties averaged); a method's average
rank is over the streams it has a value on (`n_streams` says how many).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from bench.reporting.frames import Column, best_methods, registry_rank, summary_frame

ALPHA = 0.05
MIN_PAIRS = 2
TEST_NAME = "two-sided paired t-test"

# status of a (stream, method) comparison
BEST, SAME, DIFFERS, NOT_TESTED, NO_VALUE = "best", "indistinguishable", "differs", "not tested", "no value"

TEST_COLUMNS = ["stream", "method", "best", "n_pairs", "mean_difference", "p_value", "tested",
                "indistinguishable", "status"]


def paired_p_value(values: np.ndarray, best: np.ndarray) -> float:
    """Two-sided paired t-test p-value; constant differences handled (0 -> 1.0, nonzero -> 0.0)."""
    differences = values - best
    scale = max(1.0, float(np.abs(values).max()), float(np.abs(best).max()))
    if np.ptp(differences) <= 1e-12 * scale:   # zero variance: t undefined (or inf by rounding)
        return 1.0 if np.abs(differences).max() <= 1e-12 * scale else 0.0
    from scipy.stats import ttest_rel  # scipy.stats takes most of a report's start-up: only when a test runs

    return float(ttest_rel(values, best).pvalue)


def paired_tests(cells: pd.DataFrame, metric: Column, alpha: float = ALPHA) -> pd.DataFrame:
    """One row per (stream, method) with a summary row: the best method of the stream, the number
    of seed pairs, the mean paired difference (method - best), the p-value (NaN when not tested),
    `tested`, `indistinguishable` (p >= alpha; True for the best itself) and a `status`."""
    summary = summary_frame(cells)
    best = best_methods(summary, metric)
    rows = []
    for stream, group in cells.groupby("stream", sort=False):
        per_seed = group.pivot_table(index="seed", columns="method", values=metric.column,
                                     aggfunc="first", dropna=False)
        reference = best.get(stream)
        for method in dict.fromkeys(group["method"]):
            row = {"stream": stream, "method": method, "best": reference, "n_pairs": 0,
                   "mean_difference": np.nan, "p_value": np.nan, "tested": False,
                   "indistinguishable": False, "status": NOT_TESTED}
            values = per_seed[method] if method in per_seed else pd.Series(dtype=float)
            if reference is None or values.isna().all():
                row["status"] = NO_VALUE
            elif method == reference:
                row.update(n_pairs=int(values.notna().sum()), indistinguishable=True, status=BEST)
            else:
                pairs = pd.concat([values, per_seed[reference]], axis=1).dropna()
                row["n_pairs"] = len(pairs)
                if len(pairs) >= MIN_PAIRS:
                    a, b = pairs.iloc[:, 0].to_numpy(float), pairs.iloc[:, 1].to_numpy(float)
                    p = paired_p_value(a, b)
                    row.update(mean_difference=float(np.mean(a - b)), p_value=p, tested=True,
                               indistinguishable=bool(p >= alpha), status=SAME if p >= alpha else DIFFERS)
            rows.append(row)
    return pd.DataFrame(rows, columns=TEST_COLUMNS)


def indistinguishable_pairs(tests: pd.DataFrame) -> set[tuple[str, str]]:
    """(stream, method) of the methods to mark: tested, not the best, p >= alpha."""
    marked = tests[tests["tested"] & tests["indistinguishable"]]
    return set(zip(marked["stream"], marked["method"]))


def average_ranks(cells: pd.DataFrame, metric: Column) -> pd.DataFrame:
    """Rows = methods (registry order); one column per stream with the method's rank there (1 =
    best mean, ties averaged; NaN where the method has no value on the stream), `avg_rank` over
    the streams the method has, `n_streams` (how many) and `n_streams_total`."""
    summary = summary_frame(cells)
    column = f"{metric.column}_mean"
    streams = list(dict.fromkeys(summary["stream"]))
    ranks = summary.pivot_table(index="method", columns="stream", values=column, aggfunc="first",
                                dropna=False).reindex(columns=streams)
    ranks = ranks.rank(axis=0, method="average", ascending=metric.lower_is_better)
    methods = sorted(dict.fromkeys(summary["method"]), key=registry_rank)
    ranks = ranks.reindex(methods)
    ranks.columns.name = None
    ranks.index.name = "method"
    ranks["avg_rank"] = ranks[streams].mean(axis=1, skipna=True)
    ranks["n_streams"] = ranks[streams].notna().sum(axis=1).astype(int)
    ranks["n_streams_total"] = len(streams)
    return ranks


def shows_ranks(ranks: pd.DataFrame) -> bool:
    """An average rank says something once some method is ranked on 2+ streams."""
    return bool((ranks["n_streams"] >= 2).any())
