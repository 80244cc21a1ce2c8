"""The CLoG benchmark's summaries of a per-task matrix (Zhang, Zhou, Lin et al., "CLoG: Benchmarking
Continual Learning of Image Generation Models", 2024; code github.com/linhaowei1/CLoG), so that our
tables speak the peers' language too. With a[t, j] = M[t, j], the metric on task j after learning
task t (t, j = 1..T; only tasks learned so far, j <= t, count):

- AQ_t = (1/t) sum_{j<=t} a[t, j], the average quality over the tasks learned so far;
- AIQ, average incremental quality = (1/T) sum_t AQ_t (as classification's average incremental
  accuracy: each step's average, then their mean);
- AFQ, average final quality = AQ_T, the average over all tasks after the last one;
- FR, forgetting rate = (1/(T-1)) sum_{j<T} (a[T, j] - a[j, j]) for a lower-is-better metric (CLoG
  reports FID: positive = worse at the end than right after learning j), (a[j, j] - a[T, j]) for a
  higher-is-better one, so that positive always means forgotten. NaN for a single task.

AIQ and AFQ are better in the metric's direction, FR is better lower. Where they come from: the
CLoG paper defines them on FID over label-conditioned tasks; linhaowei1/CLoG's released code scores
one FID per task and computes none of the three, and a fork that does (Programmergg/CLoG,
trainer/eval.py: AFQ the last row's mean, FR the mean of a[T, j] - a[j, j]) pools AIQ over all
(t, j <= t) entries instead of averaging each step's mean; AIQ here is the mean of the steps'
means. Two relations to ours: FR = -BWT; AFQ is the final NLL when the tasks have equally many test
images (the final NLL weighs tasks by their test images). Computed from the record's matrix when
records are read (no record holds them: `bench.report --metric clog`, and summary.csv).
"""
from __future__ import annotations

from bench.metrics.registry import Summary, SummaryLayout, register_layout, register_summary


def step_averages(matrix) -> list[float]:
    """AQ_t for t = 1..T: the mean of row t over the tasks learned so far (j <= t)."""
    return [sum(row[:t + 1]) / (t + 1) for t, row in enumerate(matrix)]


def average_incremental_quality(matrix, lower_is_better: bool = True) -> float:
    steps = step_averages(matrix)
    return sum(steps) / len(steps) if steps else float("nan")


def average_final_quality(matrix, lower_is_better: bool = True) -> float:
    return step_averages(matrix)[-1] if len(matrix) else float("nan")


def forgetting_rate(matrix, lower_is_better: bool = True) -> float:
    last = len(matrix) - 1
    if last < 1:
        return float("nan")
    sign = 1.0 if lower_is_better else -1.0
    return sum(sign * (matrix[last][j] - matrix[j][j]) for j in range(last)) / last


register_summary(Summary("aiq", "AIQ", average_incremental_quality, "metric", "clog",
                         definition="(1/T) sum_t (1/t) sum_{j<=t} M[t, j]"))
register_summary(Summary("afq", "AFQ", average_final_quality, "metric", "clog",
                         definition="(1/T) sum_j M[T, j]"))
register_summary(Summary("fr", "FR", forgetting_rate, "lower", "clog",
                         definition="(1/(T-1)) sum_{j<T} (M[T, j] - M[j, j]), sign so that positive = forgotten"))


def clog_caption(shown: tuple[str, ...]) -> str:
    names = " and ".join({"nll": "NLL", "fid": "FID"}.get(m, m) for m in shown)
    return ("The CLoG benchmark's summaries of the per-task matrix M[t, j] (" + names + "): AIQ = average "
            "incremental quality, (1/T) sum_t (1/t) sum_{j<=t} M[t, j]; AFQ = average final quality, "
            "(1/T) sum_j M[T, j]; FR = forgetting rate, (1/(T-1)) sum_{j<T} (M[T, j] - M[j, j]) (positive = "
            "forgotten); lower is better for all three here; bold: lowest NLL AIQ")


register_layout(SummaryLayout("clog", "CLoG's average incremental quality, average final quality, forgetting rate",
                              ("nll", "fid"), clog_caption))
