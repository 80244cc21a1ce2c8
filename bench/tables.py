"""Tables over records with pandas: mean +- std over seeds with n, as text (tabulate) and CSV."""
from __future__ import annotations

import numpy as np
import pandas as pd
from tabulate import tabulate

CELL_COLUMNS = ["profile_name", "harness_version", "stream", "method", "seed", "needs_task_boundaries",
                "nll", "nll_best_component", "forgetting_nll", "bwt_nll", "memory", "components",
                "parameters", "train_seconds", "eval_seconds", "eval_k", "eval_test_per_task", "nll_matrix",
                "fid", "forgetting_fid", "bwt_fid", "fid_matrix", "fid_extractor", "fid_samples"]
SUMMARY_METRICS = ["nll", "nll_best_component", "forgetting_nll", "bwt_nll", "fid", "forgetting_fid",
                   "bwt_fid", "memory", "components", "train_seconds", "eval_seconds"]
BOUNDARY_MARK = "†"


def cells_frame(records: list[dict]) -> pd.DataFrame:
    """One row per finished cell (evaluation settings lifted out of the stored profile)."""
    done = [{**r, "eval_k": r["profile"]["eval_k"],
             "eval_test_per_task": r["profile"]["eval_test_per_task"],
             "fid_extractor": (r.get("fid_info") or {}).get("extractor"),
             "fid_samples": (r.get("fid_info") or {}).get("samples")}
            for r in records if r.get("status") == "done"]
    frame = pd.DataFrame(done, columns=CELL_COLUMNS)
    numeric = [m for m in SUMMARY_METRICS if m not in ("memory", "components")]
    frame[numeric] = frame[numeric].astype(float)   # missing metrics (e.g. no FID) are NaN
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
    return summary.reset_index()


def mean_std(mean: float, std: float, digits: int = 2) -> str:
    if np.isnan(mean):
        return "-"
    return f"{mean:.{digits}f}" if np.isnan(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def format_summary(summary: pd.DataFrame) -> str:
    """The run's table. Mixtures (more than one component) also get the paper's best-component
    NLL, labelled; the primary NLL is always the proper (mixture) likelihood."""
    mixtures = bool((summary["components_mean"] > 1).any())
    has_fid = bool(summary["fid_mean"].notna().any())
    rows = []
    for _, r in summary.iterrows():
        method = r["method"] + (BOUNDARY_MARK if r["needs_task_boundaries"] else "")
        best = [mean_std(r["nll_best_component_mean"], r["nll_best_component_std"])] if mixtures else []
        fid = [mean_std(r["fid_mean"], r["fid_std"], 1)] if has_fid else []
        rows.append([r["stream"], method, mean_std(r["nll_mean"], r["nll_std"]), *best, *fid,
                     mean_std(r["forgetting_nll_mean"], r["forgetting_nll_std"]),
                     mean_std(r["bwt_nll_mean"], r["bwt_nll_std"]),
                     f"{r['memory_mean']:.0f}", f"{r['components_mean']:.0f}", int(r["n"]),
                     f"{r['train_seconds_mean']:.1f}", f"{r['eval_seconds_mean']:.1f}"])
    best_header = ["NLL best comp. ↓"] if mixtures else []
    fid_header = ["FID ↓"] if has_fid else []
    headers = ["stream", "method", "NLL (nats) ↓", *best_header, *fid_header, "forgetting ↓", "BWT ↑", "memory",
               "components", "n", "train s", "eval s"]
    profiles = ", ".join(summary["profile_name"].unique())
    caption = (f"profile {profiles}; NLL = -mean IWAE log-likelihood on the union of all test sets "
               f"after the last task (binarized test sets, fixed per stream); mean ± std over n "
               f"seeds; forgetting/BWT on the NLL[t, j] matrix; {BOUNDARY_MARK} = needs task "
               "boundaries; memory = samples stored at the end")
    if has_fid:
        caption += ("; FID of unconditional samples vs all test images (features: "
                    + ", ".join(map(str, summary["fid_extractor_first"].dropna().unique())) + ")")
    if mixtures:
        caption += ("; NLL = -log (1/C) sum_c p_c(x) for mixtures (uniform weights), "
                    "best comp. = -max_c log p_c(x) per image (the paper's score)")
    return tabulate(rows, headers=headers, tablefmt="simple", disable_numparse=True) + "\n" + caption
