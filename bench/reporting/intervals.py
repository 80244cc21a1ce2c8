"""Effect sizes with intervals: what the claims and versus tables say besides a p-value.

Per stream, the seeds both methods have are paired and d = A - B per seed. From those:
- `t_interval(d)`: the mean and its 95% t-interval (n - 1 degrees of freedom);
- `tost(d, delta)`: two one-sided t-tests against +-delta, the smallest effect of interest: the
  difference is *equivalent* (within +-delta) when the 90% t-interval lies inside [-delta, delta]
  (Schuirmann 1987; level 0.05 overall);
- over streams (`stratified`): the mean of the per-stream mean d's with a Welch-Satterthwaite
  interval (each stream's mean has its own variance s_i^2 / n_i), and a sign test over every
  seed-level difference. Streams are fixed, not sampled: the verdict covers these streams;
- `seeds_for_power(sd, effect)`: seeds needed for a paired t-test at alpha 0.05 to detect a
  difference `effect` with 80% power, given the SD of the per-seed differences (exact, from the
  noncentral t distribution).

The smallest effect of interest, EQUIVALENCE_NATS = 1 nat (docs/metrics.md#how-large-a-difference-matters):
the paper's estimator (IWAE-1000 on all test images) moves our numbers by 0.8-2.1 nats depending on
the method, and the 500-image test subset has a standard error of 0.3-0.8 nats per cell, so a
difference under 1 nat can be reversed by the choice of estimator or test images alone.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

LEVEL = 0.95
EQUIVALENCE_NATS = 1.0
POWER = 0.8
MAX_SEEDS = 1000   # "more than this": a power table cell beyond any study's reach
DELTA: ContextVar[float] = ContextVar("equivalence_delta", default=EQUIVALENCE_NATS)


@contextmanager
def equivalence_bound(delta: float):
    """Within it, equivalence is tested against +-delta (`bench.report --equivalence`)."""
    token = DELTA.set(float(delta))
    try:
        yield
    finally:
        DELTA.reset(token)


def t_interval(d: np.ndarray, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) of the t-interval of the mean of `d`; NaN bounds for fewer than 2."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    if len(d) == 0:
        return math.nan, math.nan, math.nan
    mean = float(d.mean())
    if len(d) < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return mean, mean - half, mean + half


def tost(d: np.ndarray, delta: float | None = None) -> bool:
    """Whether the mean difference is within +-delta by two one-sided tests at 0.05 (the 90%
    t-interval inside [-delta, delta]); False with fewer than 2 differences."""
    delta = DELTA.get() if delta is None else delta
    _, low, high = t_interval(d, level=0.90)
    return bool(not math.isnan(low) and -delta < low and high < delta)


def stratified(per_stream: list[np.ndarray], level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high): the mean over streams of each stream's mean d, with a Welch-Satterthwaite
    t-interval; NaN bounds when a stream has fewer than 2 differences or no spread at all."""
    from scipy import stats

    streams = [np.asarray(d, dtype=float) for d in per_stream if len(d)]
    if not streams:
        return math.nan, math.nan, math.nan
    k = len(streams)
    mean = float(np.mean([d.mean() for d in streams]))
    if any(len(d) < 2 for d in streams):
        return mean, math.nan, math.nan
    parts = [d.var(ddof=1) / len(d) / k ** 2 for d in streams]   # each stream mean's share of the variance
    variance = float(sum(parts))
    if variance <= 0:
        return mean, math.nan, math.nan
    df = variance ** 2 / sum(v ** 2 / (len(d) - 1) for v, d in zip(parts, streams) if v > 0)
    half = float(stats.t.ppf(0.5 + level / 2, df) * math.sqrt(variance))
    return mean, mean - half, mean + half


def sign_test(d: np.ndarray) -> tuple[int, int, float]:
    """(differences below 0, differences not 0, two-sided binomial p): how many seed-level
    differences favour A, ties left out."""
    from scipy import stats

    d = np.asarray(d, dtype=float)
    below, nonzero = int((d < 0).sum()), int((d != 0).sum())
    p = float(stats.binomtest(below, nonzero, 0.5).pvalue) if nonzero else math.nan
    return below, nonzero, p


def seeds_for_power(sd: float, effect: float, alpha: float = 0.05, power: float = POWER) -> int | None:
    """Seeds (pairs) a two-sided paired t-test at `alpha` needs to detect a true mean difference
    `effect` with probability `power`, when per-seed differences have standard deviation `sd`;
    None beyond MAX_SEEDS or when sd is unknown."""
    from scipy import stats

    if not (sd > 0) or not np.isfinite(sd):
        return None if not sd == 0 else 2
    for n in range(2, MAX_SEEDS + 1):
        df = n - 1
        critical = stats.t.ppf(1 - alpha / 2, df)
        shift = effect / (sd / math.sqrt(n))
        # the far tail (a significant difference of the wrong sign): scipy gives NaN where it is ~0
        far = float(np.nan_to_num(stats.nct.cdf(-critical, df, shift)))
        achieved = float(stats.nct.sf(critical, df, shift)) + far
        if achieved >= power:
            return n
    return None


def signed(value: float, digits: int = 2) -> str:
    return "nan" if math.isnan(value) else f"{value:+.{digits}f}"


def interval_text(mean: float, low: float, high: float, digits: int = 2) -> str:
    """'+21.32 [+8.92, +33.72]', or '+21.32' with no interval."""
    if math.isnan(low):
        return signed(mean, digits)
    return f"{signed(mean, digits)} [{signed(low, digits)}, {signed(high, digits)}]"


def p_text(p: float) -> str:
    """A p-value to two significant digits at most ('< 0.001' below), '-' when untested."""
    if p is None or math.isnan(p):
        return "-"
    return "< 0.001" if p < 0.001 else f"{p:.2g}"
