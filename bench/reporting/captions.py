"""The one source of table captions: the protocol a table's numbers come from, read off its cells.

Both the run's table (bench.run) and the report's (bench.report) are captioned here, so the
protocol is written once: what NLL and FID are (docs/metrics.md), over how many seeds, the memory
budgets each method had, and the paper's names of the methods.
"""
from __future__ import annotations

import pandas as pd

from bench.reporting.frames import summary_frame
from bench.reporting.render import BEST_MARK, BOUNDARY_MARK


def joined(values) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


def test_images_text(cells: pd.DataFrame) -> str:
    per_task = {None if pd.isna(v) else int(v) for v in cells["eval_test_per_task"]}
    if per_task == {None}:
        return "all test images"
    return "up to " + joined(sorted(v for v in per_task if v is not None)) + " test images per task" + (
        " (all, for some profiles)" if None in per_task else "")


def nll_protocol(cells: pd.DataFrame) -> str:
    k = joined(sorted(int(v) for v in cells["eval_k"].unique()))
    text = (f"NLL = IWAE-{k} estimate of -log p(x) in nats on {test_images_text(cells)}, test sets "
            "binarized once with a fixed seed per stream, training data dynamically binarized")
    text += "; a mixture's is -log sum_c w_c p_c(x) with the model's weights (uniform here)"
    if (cells["components"] > 1).any():
        text += ", best comp. = -max_c log p_c(x) per image (the paper's score)"
    return text


def seeds_text(cells: pd.DataFrame) -> str:
    seeds = sorted(cells["seed"].unique())
    return f"mean ± std over {len(seeds)} seed(s) ({', '.join(map(str, seeds))})"


def fid_protocol(cells: pd.DataFrame) -> str:
    if cells["fid"].isna().all():
        return ""
    extractors = ", ".join(sorted({str(e) for e in cells["fid_extractor"].dropna()}))
    samples = ", ".join(sorted({str(int(n)) for n in cells["fid_samples"].dropna()}))
    return (f" FID: Frechet distance (float64) between {extractors} features of N = {samples} "
            "unconditional binarized samples and the binarized test images (per task: each task's "
            "test set; overall: all test sets).")


def paper_names(methods) -> str:
    """'first-k = VAE-ELBO-Random, ...' for the methods that have a name in the OCM paper."""
    from methods import METHODS

    names = dict.fromkeys(m.partition("[")[0] for m in methods)
    pairs = [f"{m} = {METHODS[m].paper_name}" for m in names if m in METHODS and METHODS[m].paper_name]
    return ", ".join(pairs)


def budget_notes(summary: pd.DataFrame) -> str:
    """'first-k[...]: budget = ocm's peak memory (710); ocm: STM 512, LTM <= 2560'."""
    notes = dict.fromkeys(
        f"{r['method']}: {r['budget_note']}"
        + (f" ({', '.join(sorted(set(r['matched_budget'].split('/'))))})"
           if isinstance(r["matched_budget"], str) else "")
        for _, r in summary.iterrows() if isinstance(r["budget_note"], str))
    return "; ".join(notes)


def budget_protocol(cells: pd.DataFrame) -> str:
    """The memory budgets (matched ones with their resolved numbers) and the paper's names."""
    summary = summary_frame(cells)
    budgets, named = budget_notes(summary), paper_names(summary["method"])
    text = f" Budgets: {budgets}." if budgets else ""
    if summary["matched_budget"].notna().any():
        text += (" METHOD[budget=match:REF]: the budget is REF's peak memory on the same stream, seed "
                 "and profile (resolved numbers after '=', one per seed).")
    return text + (f" In the OCM paper's tables: {named}." if named else "")


def caption(cells: pd.DataFrame, what: str, best_marked: bool = True) -> str:
    """'{what}. Profile ...; NLL = ...; mean ± std over n seeds; † ...; best ...' + FID and budgets."""
    profiles = joined(cells["profile_name"].unique())
    versions = joined(cells["harness_version"].unique())
    best = f"; best per column in bold/{BEST_MARK}" if best_marked else ""
    return (f"{what}. Profile {profiles} (harness {versions}); {nll_protocol(cells)}; "
            f"{seeds_text(cells)}; {BOUNDARY_MARK} needs task boundaries{best}.{fid_protocol(cells)}"
            f"{budget_protocol(cells)}")
