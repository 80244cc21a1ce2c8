"""The one source of table captions: the protocol a table's numbers come from, read off its cells.

Both the run's table (bench.run) and the report's (bench.report) are captioned here, so the
protocol is written once: what NLL and FID are (docs/metrics.md), over how many seeds, the memory
budgets each method had, and the paper's names of the methods.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from contextvars import ContextVar

import pandas as pd

from bench.metrics import primary_metric, provenances
from bench.reporting.frames import summary_frame
from bench.reporting.render import BEST_MARK, BOUNDARY_MARK, SAME_MARK
from methods import is_upper_bound


def joined(values) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


def versions_text(cells: pd.DataFrame) -> str:
    """'0.7.0', or '0.7.0; curl, limix-paper: 0.8.0' when rows come from different versions of
    their methods' numbers (the most common version first, then the rows of each other one)."""
    by_row = cells.drop_duplicates("method").set_index("method")["numbers_version"].astype(str)
    counts = by_row.value_counts()
    main = counts.index[0]
    others = [f"{', '.join(by_row[by_row == v].index)}: {v}" for v in counts.index[1:]]
    return "; ".join([main, *others])


def protocol_text(cells: pd.DataFrame, primary: bool) -> str:
    """The primary family's protocol sentence (`primary`), or the other families' (each its
    provenance's caption, bench/metrics), read off the cells."""
    texts = [p.caption(cells) for p in provenances() if p.caption is not None
             and (p == primary_metric().provenance) == primary]
    return " ".join(t for t in texts if t)


def nll_protocol(cells: pd.DataFrame) -> str:
    text = protocol_text(cells, primary=True)
    text += f"; a mixture's is -log sum_c w_c p_c(x) with the model's weights ({weights_text(cells)})"
    if (cells["components"] > 1).any():
        text += ", best comp. = -max_c log p_c(x) per image (the paper's score)"
    return text


def weights_text(cells: pd.DataFrame) -> str:
    """The mixture weights w_c of the table's methods: uniform, but where a method declares others
    (its `Reporting.weights`: CN-DPM's experts' counts, LIMix's tasks learned; docs/metrics.md)."""
    from methods import METHODS

    other: dict[str, list[str]] = {}
    for method, name, config in cells[["method", "method_name", "config"]].drop_duplicates("method").itertuples(index=False):
        spec = METHODS.get(name)
        weights = spec.reporting.weights if spec is not None else None
        what = weights(json.loads(config)) if weights is not None and isinstance(config, str) else None
        if what:
            other.setdefault(what, []).append(method)
    if not other:
        return "uniform here"
    return "uniform; " + "; ".join(f"{', '.join(methods)}: proportional to {what}" for what, methods in other.items())


def seeds_text(cells: pd.DataFrame) -> str:
    seeds = sorted(cells["seed"].unique())
    return f"mean ± std over {len(seeds)} seed(s) ({', '.join(map(str, seeds))})"


def fid_protocol(cells: pd.DataFrame) -> str:
    text = protocol_text(cells, primary=False)
    return f" {text}" if text else ""


def paper_names(methods) -> str:
    """'first-k = VAE-ELBO-Random, ...' for the methods that have a name in the OCM paper."""
    from methods import base_name, paper_name

    names = dict.fromkeys(base_name(m) for m in methods)
    pairs = [f"{m} = {paper_name(m)}" for m in names if paper_name(m)]
    return ", ".join(pairs)


def budget_notes(summary: pd.DataFrame) -> str:
    """'first-k[...]: budget = ocm's peak memory (710); ocm: STM 512, LTM <= 2560': one entry per
    method, a matched budget's resolved numbers per stream where the streams differ ('(split-mnist
    1088; mnist-fashion 1578)'): the same label twice with two numbers would not say which is which."""
    notes: dict[str, dict[str, str]] = {}
    for _, r in summary.iterrows():
        if not isinstance(r["budget_note"], str):
            continue
        resolved = (", ".join(sorted(set(r["matched_budget"].split("/"))))
                    if isinstance(r["matched_budget"], str) else "")
        notes.setdefault(f"{r['method']}: {r['budget_note']}", {})[str(r.get("stream", ""))] = resolved
    out = []
    for note, per_stream in notes.items():
        numbers = [n for n in per_stream.values() if n]
        if len(set(numbers)) > 1:
            note += " (" + "; ".join(f"{stream} {n}" for stream, n in per_stream.items() if n) + ")"
        elif numbers:
            note += f" ({numbers[0]})"
        out.append(note)
    return "; ".join(out)


def budget_protocol(cells: pd.DataFrame) -> str:
    """The memory budgets (matched ones with their resolved numbers) and the paper's names."""
    summary = summary_frame(cells)
    budgets, named = budget_notes(summary), paper_names(summary["method"])
    text = f" Budgets: {budgets}." if budgets else ""
    if summary["matched_budget"].notna().any():
        text += (" METHOD[budget=match:REF]: the budget is REF's peak memory on the same stream, seed "
                 "and profile (the resolved numbers in parentheses, one per seed).")
    return text + (f" In the OCM paper's tables: {named}." if named else "")


def pairs_text(counts) -> str:
    counts = sorted({int(n) for n in counts})
    if not counts:
        return "no pairs"
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"{span} pair(s)"


def significance_note(tests: pd.DataFrame, test_name: str, alpha: float) -> str:
    """'; ≈: not distinguishable from the column's best (...)' from significance.paired_tests."""
    tested = tests[tests["tested"]]
    untested = tests[tests["status"] == "not tested"]
    if tested.empty:
        return (f"; no {SAME_MARK} marks: differences to the column's best not tested (fewer than 2 "
                "seeds in common with the best)")
    text = (f"; {SAME_MARK}: not distinguishable from the column's best by a {test_name} over seeds "
            f"(paired by seed, only the seeds both have: {pairs_text(tested['n_pairs'])}; alpha = {alpha:g}, "
            f"marked when p is at least alpha; no multiple-comparison correction; with so few seeds {SAME_MARK} means not shown to differ, not equal)")
    if not untested.empty:
        text += ("; not tested (fewer than 2 common seeds): "
                 + ", ".join(f"{m} on {s}" for s, m in zip(untested["stream"], untested["method"])))
    return text


def ranks_note(metric_label: str, partial: bool) -> str:
    """'; avg rank: ...' for the average-rank column of the Table-1 layout."""
    text = (f"; avg rank: mean over streams of the method's rank by mean {metric_label} (1 = best, "
            "ties averaged)")
    return text + ("; (k/N): ranked on the k of N streams it has" if partial else "")


# The HTML page says the protocol once, in a section of its own, and each caption points there
# (bench/reporting/html.py turns the pointer into a link); text, Markdown and LaTeX tables stand
# alone, so their captions carry it.
PROTOCOL_ELSEWHERE: ContextVar[bool] = ContextVar("protocol_elsewhere", default=False)
PROTOCOL_POINTER = "How these numbers were made: see that section."


@contextmanager
def protocol_said_once():
    """Within it, captions keep only what differs between tables, and end in PROTOCOL_POINTER."""
    token = PROTOCOL_ELSEWHERE.set(True)
    try:
        yield
    finally:
        PROTOCOL_ELSEWHERE.reset(token)


def protocol(cells: pd.DataFrame) -> str:
    """What every table of these cells shares: the profile, the versions, what the metrics are,
    the seeds, the budgets and the paper's names of the methods."""
    profiles = joined(cells["profile_name"].unique())
    return (f"Profile {profiles} (harness {versions_text(cells)}); {nll_protocol(cells)}; {seeds_text(cells)}."
            f"{fid_protocol(cells)}{budget_protocol(cells)}")


def caption_only(what: str) -> str:
    """A caption that needs no protocol (a table derived from another one's numbers)."""
    return f"{what}."


def caption(cells: pd.DataFrame, what: str, best_marked: bool = True, notes: str = "") -> str:
    """'{what}. Profile ...; NLL = ...; mean ± std over n seeds; † ...; best ...{notes}' + FID and
    budgets. `notes` ('; ...' clauses: significance marks, ranks) follow the best-mark clause."""
    best = f"; best per column in bold/{BEST_MARK}" if best_marked else ""
    bounds = sorted({m for m in cells["method"] if is_upper_bound(m)})
    if best_marked and bounds:
        best += f" ({', '.join(bounds)}: an upper bound, not a competitor, never the best)"
    if PROTOCOL_ELSEWHERE.get():
        return f"{what}; {BOUNDARY_MARK} needs task boundaries{best}{notes}. {PROTOCOL_POINTER}"
    profiles = joined(cells["profile_name"].unique())
    versions = versions_text(cells)
    return (f"{what}. Profile {profiles} (harness {versions}); {nll_protocol(cells)}; "
            f"{seeds_text(cells)}; {BOUNDARY_MARK} needs task boundaries{best}{notes}.{fid_protocol(cells)}"
            f"{budget_protocol(cells)}")
