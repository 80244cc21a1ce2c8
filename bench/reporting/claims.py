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
from bench.reporting.intervals import (
    DELTA,
    LEVEL,
    interval_text,
    p_text,
    sign_test,
    stratified,
    t_interval,
    tost,
)
from bench.reporting.paper import paper_entry
from bench.reporting.significance import ALPHA, MIN_PAIRS, TEST_NAME, paired_p_value

HOLDS, FAILS, CANNOT_TELL, NOT_RUN = "holds", "fails", "cannot tell", "not run"
STREAM_DEPENDENT = "stream-dependent"
MIN_DECIDED = 3   # seeds below which a zero-variance difference decides nothing
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
# ours (reports/fidelity.md): a true reservoir at OCM's memory beats OCM; and OCM against MIR
# at the same memory (issue 35).
CLAIMS = (
    Claim("ocm-dynamic", "ocm", "paper"),
    Claim("ocm", "first-k", "paper"),
    Claim("ocm", "first-k[train_incoming=true]", "paper"),   # the other reading of "Random"
    Claim("ocm-iw50", "ocm", "paper"),
    Claim("cndpm-paper", "ocm", "paper"),
    Claim("ocm", "limix-paper", "paper"),
    Claim("reservoir[budget=match:ocm]", "ocm", "ours"),
    # the field's online-replay baseline at OCM's memory: does OCM's selection beat MIR's retrieval?
    Claim("ocm", "mir[budget=match:ocm]", "ours"),
)


def verdict(differences: np.ndarray, alpha: float = ALPHA) -> tuple[str, float]:
    """(verdict, p-value) from the per-seed differences better - worse. A difference that is the
    same on every seed has no spread to test against: with fewer than MIN_DECIDED seeds that is
    no evidence ("cannot tell", p NaN), however large."""
    if len(differences) < MIN_PAIRS:
        return CANNOT_TELL, float("nan")
    if len(differences) < MIN_DECIDED and np.ptp(differences) == 0:
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
                   "mean_difference": np.nan, "std_difference": np.nan, "low": np.nan, "high": np.nan,
                   "p_value": np.nan, "verdict": NOT_RUN, "equivalent": False, "paper_difference": np.nan,
                   "differences": [], "image_se": np.nan}
            ours = [paper_entry(m, stream) for m in (claim.better, claim.worse)]
            if all(ours):
                row["paper_difference"] = ours[0][1] - ours[1][1]
            if claim.better in per_seed and claim.worse in per_seed:
                pairs = per_seed[[claim.better, claim.worse]].dropna()
                d = (pairs[claim.better] - pairs[claim.worse]).to_numpy(float)
                row["n_pairs"] = len(d)
                if len(d):
                    row["mean_difference"], row["low"], row["high"] = t_interval(d)
                    row["std_difference"] = float(d.std(ddof=1)) if len(d) > 1 else np.nan
                    row["differences"] = d.tolist()
                row["verdict"], row["p_value"] = verdict(d, alpha)
                row["equivalent"] = row["verdict"] == CANNOT_TELL and tost(d)
                row["image_se"] = image_se(group, claim, pairs.index)
            rows.append(row)
    frame = pd.DataFrame(rows)
    frame["p_holm"] = holm(frame["p_value"].to_numpy(float))
    return frame


def image_se(group: pd.DataFrame, claim: Claim, seeds) -> float:
    """The test images' standard error of the mean d over `seeds`: per seed std over images of the
    per-image difference / sqrt(images) (every cell of a stream scores the same images), combined
    as sqrt(sum SE_s^2) / seeds; NaN where a record has no per-image NLLs (before 0.8.0)."""
    if "nll_per_image" not in group:
        return float("nan")
    from bench.metrics.nll import paired_image_se

    cells = group.set_index(["method", "seed"])["nll_per_image"]
    errors = []
    for seed in seeds:
        try:
            a, b = cells.loc[(claim.better, seed)], cells.loc[(claim.worse, seed)]
        except KeyError:
            return float("nan")
        se = paired_image_se({"nll_per_image": a}, {"nll_per_image": b}) if isinstance(a, str) and isinstance(b, str) else None
        if se is None:
            return float("nan")
        errors.append(se)
    return float(np.sqrt(np.sum(np.square(errors))) / len(errors)) if errors else float("nan")


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
    """'holds‡: d = -2.91 [-3.88, -1.94], p = 0.006 (paper -4.96)'; a "cannot tell" whose 90%
    interval lies within the equivalence bound says so."""
    if row["verdict"] == NOT_RUN:
        return NOT_RUN
    d = f"d = {interval_text(row['mean_difference'], row['low'], row['high'])}"
    p = "" if np.isnan(row["p_value"]) else f", p {'' if row['p_value'] < 0.001 else '= '}{p_text(row['p_value'])}"
    paper = "" if np.isnan(row["paper_difference"]) else f" (paper {row['paper_difference']:+.2f})"
    survives = HOLM_MARK if row["verdict"] in (HOLDS, FAILS) and row["p_holm"] < ALPHA else ""
    said = row["verdict"]
    if row["verdict"] == CANNOT_TELL and row["n_pairs"] < MIN_DECIDED:
        said += f" ({int(row['n_pairs'])} seed{'s' if row['n_pairs'] != 1 else ''})"
    if row["equivalent"]:
        said = f"equivalent (within ±{DELTA.get():g})"
    return f"{said}{survives}: {d}{p}{paper}"


def over_streams(group: pd.DataFrame) -> dict:
    """A claim's verdict over the streams (rows of one claim): the stratified mean d with its
    Welch-Satterthwaite interval, the seed-level sign count and test, and the verdict: holds /
    fails when the interval excludes 0 and no stream says the opposite, stream-dependent when
    streams decide both ways, else cannot tell."""
    ran = group[group["verdict"] != NOT_RUN]
    per_stream = [np.asarray(d, dtype=float) for d in ran["differences"]]
    mean, low, high = stratified(per_stream)
    below, nonzero, sign_p = sign_test(np.concatenate(per_stream)) if per_stream else (0, 0, np.nan)
    decided = set(ran["verdict"]) & {HOLDS, FAILS}
    if decided == {HOLDS, FAILS}:
        said = STREAM_DEPENDENT
    elif not np.isnan(low) and (high < 0 or low > 0):
        said = HOLDS if high < 0 else FAILS
        if decided and decided != {said}:
            said = STREAM_DEPENDENT
    else:
        said = CANNOT_TELL
    return {"mean": mean, "low": low, "high": high, "below": below, "nonzero": nonzero, "sign_p": sign_p,
            "verdict": said, "streams": len(ran)}


def over_streams_text(summary: dict) -> str:
    if summary["streams"] == 0:
        return NOT_RUN
    return (f"{summary['verdict']}: d = {interval_text(summary['mean'], summary['low'], summary['high'])}; "
            f"{summary['below']}/{summary['nonzero']} seeds d < 0, sign p {p_text(summary['sign_p'])}")


def claims_table(cells: pd.DataFrame, fmt_name: str) -> str:
    from bench.reporting.captions import caption
    from bench.reporting.render import plain, render

    frame = claims_frame(cells)
    streams = list(dict.fromkeys(frame["stream"]))
    rows = []
    for (text, source), group in frame.groupby(["claim", "source"], sort=False):
        by_stream = group.set_index("stream")
        rows.append([plain(f"{text}{'' if source == 'paper' else ' (ours)'}", fmt_name),
                     *[plain(cell_text(by_stream.loc[s]), fmt_name) for s in streams],
                     *([plain(over_streams_text(over_streams(group)), fmt_name)] if len(streams) > 1 else [])])
    what = ("The OCM paper's claims per stream, A < B: A's NLL is lower. d = NLL_A - NLL_B in nats over the "
            f"seeds both have, mean [{LEVEL:.0%} t-interval] (negative supports the claim); p: {TEST_NAME}; "
            f"holds / fails: p < {ALPHA:g} with d below / above 0; cannot tell: p >= {ALPHA:g}, fewer than 2 "
            f"seeds, or the same d on every one of fewer than {MIN_DECIDED} (no spread: no evidence); "
            f"equivalent: cannot tell, and the 90% interval lies within ±{DELTA.get():g} nat (two one-sided "
            f"tests; the bound: docs/metrics.md); {HOLM_MARK}: still p < {ALPHA:g} after Holm's correction over "
            f"the table's {int(frame['p_value'].notna().sum())} tests (the others are one-test verdicts); "
            "(paper d): the same difference in the paper's Table 1 (IWAE-1000, E = 100, full data)"
            + ("; over these streams: the mean of the streams' d with a Welch-Satterthwaite interval, the "
               "seed-level differences below 0 and their sign test; stream-dependent: streams decide both "
               "ways (the streams are fixed: the verdict covers these streams only)" if len(streams) > 1 else ""))
    headers = ("claim", *streams, *(["over these streams"] if len(streams) > 1 else []))
    return (render([plain(h, fmt_name) for h in headers], rows, fmt_name, caption(cells, what, best_marked=False))
            + "\n" + power_table(frame, fmt_name))


POWER_EFFECTS = (1.0, 2.0, 5.0)   # nats: the smallest effect of interest, and two larger


def pooled_sd(group: pd.DataFrame) -> float:
    """The SD of the per-seed differences pooled over streams (each stream's variance weighted by
    its degrees of freedom): the streams' means differ, their seed noise is one quantity."""
    parts = [np.asarray(d, dtype=float) for d in group["differences"] if len(d) > 1]
    df = sum(len(d) - 1 for d in parts)
    return float(np.sqrt(sum(d.var(ddof=1) * (len(d) - 1) for d in parts) / df)) if df else float("nan")


def power_table(frame: pd.DataFrame, fmt_name: str) -> str:
    """Seeds a paired t-test (alpha 0.05, 80% power) needs to detect a difference of 1, 2 and 5 nats,
    per claim, from the observed spread of its per-seed differences."""
    from bench.reporting.captions import caption_only
    from bench.reporting.intervals import POWER, seeds_for_power
    from bench.reporting.render import plain, render

    rows = []
    for (text, _), group in frame.groupby(["claim", "source"], sort=False):
        sd = pooled_sd(group)
        needed = [seeds_for_power(sd, effect) for effect in POWER_EFFECTS]
        # the seeds of the streams it ran on ("3", or "2, 3" where streams differ): a stream it did
        # not run on is no seed count ("0/3" read as a fraction)
        seeds = sorted({int(n) for n in group["n_pairs"] if n > 0}) or [0]
        rows.append([plain(x, fmt_name) for x in (
            text, "-" if np.isnan(sd) else f"{sd:.2f}", ", ".join(map(str, seeds)),
            *("-" if n is None and np.isnan(sd) else (f"> {1000}" if n is None else str(n)) for n in needed))])
    headers = [plain(h, fmt_name) for h in ("claim", "SD of d (nats)", "seeds now",
                                            *(f"seeds for {e:g} nat" for e in POWER_EFFECTS))]
    what = (f"Seeds needed: per claim, the seeds a {TEST_NAME} at alpha {ALPHA:g} needs to detect a true "
            f"difference of {', '.join(f'{e:g}' for e in POWER_EFFECTS)} nats with {POWER:.0%} power (noncentral "
            "t), from the SD of the per-seed differences pooled over the streams (weighted by degrees of "
            "freedom); a 'cannot tell' with fewer seeds than its effect needs says little")
    return render(headers, rows, fmt_name, caption_only(what))


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
    with_images = bool(frame["image_se"].notna().any())
    out = []
    for stream, group in frame.groupby("stream", sort=False):
        rows = []
        for _, row in group.iterrows():
            other = row["claim"].split(" < ", 1)[1]
            survives = HOLM_MARK if row["verdict"] in (HOLDS, FAILS) and row["p_holm"] < ALPHA else ""
            words = {HOLDS: f"{method} better", FAILS: f"{method} worse",
                     CANNOT_TELL: "cannot tell" + ("" if row["n_pairs"] >= MIN_PAIRS else " (one seed)")}[row["verdict"]]
            if row["equivalent"]:
                words = f"equivalent (within ±{DELTA.get():g})"
            d = interval_text(row["mean_difference"], row["low"], row["high"])
            images = [] if not with_images else ["-" if np.isnan(row["image_se"]) else f"{row['image_se']:.2f}"]
            rows.append([plain(x, fmt_name) for x in (other, d, *images, str(int(row["n_pairs"])),
                                                      p_text(row["p_value"]), words + survives)])
        headers = [plain(h, fmt_name) for h in ("against", f"d (nats) [{LEVEL:.0%} CI]",
                                                *(["image SE"] if with_images else []), "seeds", "p", "verdict")]
        what = (f"{method} against every other row on {stream}: d = NLL({method}) - NLL(row), mean over the "
                f"seeds both have with its {LEVEL:.0%} t-interval (negative: {method} better); p: {TEST_NAME}; "
                f"verdict at p < {ALPHA:g}; equivalent: the 90% interval within ±{DELTA.get():g} nat; "
                + ("image SE: the test images' standard error of d (the same images in every cell; per seed "
                   "std over images of the per-image difference / sqrt(images), combined over the seeds), "
                   "the part of the spread that another draw of test images would change; " if with_images else "")
                +
                f"{HOLM_MARK}: still so after Holm's correction over the {int(frame['p_value'].notna().sum())} tests "
                "of these tables")
        out.append(stream_heading(stream, fmt_name)
                   + render(headers, rows, fmt_name, caption(cells[cells["stream"] == stream], what, best_marked=False)))
    return "\n".join(out)
