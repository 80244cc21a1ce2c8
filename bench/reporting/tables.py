"""Tables over records with pandas: mean +- std over seeds with n, as text (tabulate) and CSV."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

CELL_COLUMNS = ["profile_name", "harness_version", "stream", "method", "method_name", "seed",
                "needs_task_boundaries", "nll", "nll_best_component", "forgetting_nll", "bwt_nll", "memory",
                "memory_peak", "gradient_steps", "images_trained", "components", "parameters",
                "train_seconds", "eval_seconds", "eval_k", "eval_test_per_task", "nll_matrix", "fid",
                "forgetting_fid", "bwt_fid", "fid_matrix", "fid_extractor", "fid_samples", "matched_budget",
                "budget_note", "timeline"]
SUMMARY_METRICS = ["nll", "nll_best_component", "forgetting_nll", "bwt_nll", "fid", "forgetting_fid",
                   "bwt_fid", "memory", "memory_peak", "gradient_steps", "images_trained", "components",
                   "train_seconds", "eval_seconds"]
BOUNDARY_MARK = "†"


def registry_rank(name):
    """Streams and methods sort in registry order, a variant right after its method (unknown
    names after all, as they are)."""
    from methods import METHODS
    from streams import STREAMS

    order = {n: i for i, n in enumerate([*STREAMS, *METHODS])}
    if not isinstance(name, str):
        return name
    base = name.partition("[")[0]
    return order.get(name, order.get(base, len(order)) + (0.5 if base != name else 0))


def matched_budget(record: dict) -> str | None:
    """'budget=ocm:590' for a cell whose settings were matched to another method's memory."""
    matched = record.get("matched") or {}
    return ",".join(f"{k}={ref}:{record['method_config'][k]}" for k, ref in matched.items()) or None


def budget_note(record: dict) -> str | None:
    """What a method may store, from its config: 'budget 3000', 'budget = ocm's peak memory',
    'STM 512, LTM <= 2560'; None for methods without a memory setting."""
    config, matched = record.get("method_config") or {}, record.get("matched") or {}
    if "budget" in matched:
        return f"budget = {matched['budget']}'s peak memory"
    if "budget" in config:
        return f"budget {config['budget']}"
    if "stm_capacity" in config:
        return f"STM {config['stm_capacity']}, LTM <= {config['ltm_capacity']}"
    return None


def cells_frame(records: list[dict]) -> pd.DataFrame:
    """One row per finished cell (evaluation settings lifted out of the stored profile). `method`
    is the method's label (a variant such as 'reservoir[budget=match:ocm]' is its own row);
    `method_name` the registered method."""
    done = [{**r, "method": r.get("method_label") or r["method"], "method_name": r["method"],
             "eval_k": r["profile"]["eval_k"],
             "eval_test_per_task": r["profile"]["eval_test_per_task"],
             "fid_extractor": (r.get("fid_info") or {}).get("extractor"),
             "fid_samples": (r.get("fid_info") or {}).get("samples"),
             "matched_budget": matched_budget(r), "budget_note": budget_note(r)}
            for r in records if r.get("status") == "done"]
    frame = pd.DataFrame(done, columns=CELL_COLUMNS)
    frame[SUMMARY_METRICS] = frame[SUMMARY_METRICS].astype(float)   # missing metrics (no FID) are NaN
    return frame


def summary_frame(cells: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (over seeds; NaN for one seed) and n per (profile, stream, method), in the
    order the streams and methods first appear."""
    keys = ["profile_name", "stream", "method"]
    grouped = cells.groupby(keys, sort=False)
    summary = grouped[SUMMARY_METRICS].agg(["mean", "std"])
    summary.columns = [f"{metric}_{stat}" for metric, stat in summary.columns]
    summary["n"] = grouped.size()
    summary["needs_task_boundaries"] = grouped["needs_task_boundaries"].first()
    summary["fid_extractor_first"] = grouped["fid_extractor"].first()
    summary["budget_note"] = grouped["budget_note"].first()
    summary["matched_budget"] = grouped["matched_budget"].agg(
        lambda v: "/".join(x.rpartition(":")[2] for x in v if isinstance(x, str)) or None)
    return summary.reset_index()


def method_with_budget(row) -> str:
    """The method's label, with the resolved numbers of a matched budget (one per seed)."""
    label = row["method"] + (BOUNDARY_MARK if row["needs_task_boundaries"] else "")
    return label + (f" = {row['matched_budget']}" if isinstance(row.get("matched_budget"), str) else "")


def paper_names(methods) -> str:
    """'first-k = VAE-ELBO-Random, ...' for the methods that have a name in the OCM paper."""
    from methods import METHODS

    names = dict.fromkeys(m.partition("[")[0] for m in methods)
    pairs = [f"{m} = {METHODS[m].paper_name}" for m in names if m in METHODS and METHODS[m].paper_name]
    return ", ".join(pairs)


def budget_notes(summary: pd.DataFrame) -> tuple[str, str]:
    """('first-k[...]: budget = ocm's peak memory (710); ocm: STM 512, LTM <= 2560', the paper's
    names of these methods), from a summary frame: the one source of both captions' budget text."""
    notes = dict.fromkeys(
        f"{r['method']}: {r['budget_note']}"
        + (f" ({', '.join(sorted(set(r['matched_budget'].split('/'))))})"
           if isinstance(r["matched_budget"], str) else "")
        for _, r in summary.iterrows() if isinstance(r["budget_note"], str))
    return "; ".join(notes), paper_names(summary["method"])


def budget_text(mean: float) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean / 1000:.1f}k" if mean >= 10000 else f"{mean:.0f}"


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_summary(summary: pd.DataFrame) -> str:
    """The run's table. Mixtures (more than one component) also get the paper's best-component
    NLL, labelled; the primary NLL is always the proper (mixture) likelihood. The budgets are in
    it: memory at the end and at its peak, gradient steps and images trained on."""
    mixtures = bool((summary["components_mean"] > 1).any())
    has_fid = bool(summary["fid_mean"].notna().any())
    several_profiles = summary["profile_name"].nunique() > 1
    rows = []
    for _, r in summary.iterrows():
        best = [mean_std(r["nll_best_component_mean"], r["nll_best_component_std"])] if mixtures else []
        fid = [mean_std(r["fid_mean"], r["fid_std"], 1)] if has_fid else []
        profile = [r["profile_name"]] if several_profiles else []
        rows.append([*profile, r["stream"], method_with_budget(r), mean_std(r["nll_mean"], r["nll_std"]),
                     *best, *fid,
                     mean_std(r["forgetting_nll_mean"], r["forgetting_nll_std"]),
                     mean_std(r["bwt_nll_mean"], r["bwt_nll_std"]),
                     f"{budget_text(r['memory_mean'])}/{budget_text(r['memory_peak_mean'])}",
                     budget_text(r["gradient_steps_mean"]), budget_text(r["images_trained_mean"]),
                     f"{r['components_mean']:.0f}", int(r["n"]),
                     f"{r['train_seconds_mean']:.1f}", f"{r['eval_seconds_mean']:.1f}"])
    best_header = ["NLL best comp. ↓"] if mixtures else []
    fid_header = ["FID ↓"] if has_fid else []
    headers = [*(["profile"] if several_profiles else []), "stream", "method", "NLL (nats) ↓", *best_header,
               *fid_header, "forgetting ↓", "BWT ↑", "memory end/peak", "steps", "images trained",
               "components", "n", "train s", "eval s"]
    profiles = ", ".join(summary["profile_name"].unique())
    caption = (f"profile {profiles}; NLL = -mean IWAE log-likelihood on the union of all test sets "
               f"after the last task (binarized test sets, fixed per stream); mean ± std over n "
               f"seeds; forgetting/BWT on the NLL[t, j] matrix; {BOUNDARY_MARK} = needs task "
               "boundaries; memory = samples stored at the end / at most; steps = gradient steps; "
               "images trained = rows in all training minibatches (replayed and generated included)")
    if summary["matched_budget"].notna().any():
        caption += ("; METHOD[budget=match:REF] = budget set to REF's peak memory on the same stream, "
                    "seed and profile (resolved numbers after '=', one per seed)")
    budgets, named = budget_notes(summary)
    if budgets:
        caption += f"; budgets: {budgets}"
    if named:
        caption += f"; in the OCM paper's tables: {named}"
    if has_fid:
        caption += ("; FID of unconditional samples vs all test images (features: "
                    + ", ".join(map(str, summary["fid_extractor_first"].dropna().unique())) + ")")
    if mixtures:
        caption += ("; NLL = -log (1/C) sum_c p_c(x) for mixtures (uniform weights), "
                    "best comp. = -max_c log p_c(x) per image (the paper's score)")
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + "\n" + caption
