"""Forgetting and backward transfer of a per-task matrix M[t, j] (after segment t, on task j),
written into every record by the evaluation (docs/metrics.md#forgetting-and-backward-transfer).

For a lower-is-better metric (NLL, FID):
- forgetting f_j = M[T, j] - min_{j <= l < T} M[l, j], averaged over j < T (Chaudhry et al. 2018,
  sign adapted: positive = worse at the end than at its best);
- BWT = mean_{j < T} (M[j, j] - M[T, j]) (negative = the final model is worse on old tasks).
A higher-is-better metric's (precision, ...) are those of -M, so that positive forgetting and
negative BWT still mean worse. T is the last segment; both are NaN for a single task.
"""
from __future__ import annotations

from bench.metrics.registry import Summary, SummaryLayout, register_layout, register_summary


def forgetting(matrix) -> float:
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    last = len(m) - 1
    if last < 1:
        return float("nan")
    return float(np.mean([m[last, j] - m[j:last, j].min() for j in range(last)]))


def backward_transfer(matrix) -> float:
    import numpy as np

    m = np.asarray(matrix, dtype=float)
    last = len(m) - 1
    if last < 1:
        return float("nan")
    return float(np.mean([m[j, j] - m[last, j] for j in range(last)]))


def oriented(matrix, lower_is_better: bool):
    """M, or -M for a higher-is-better metric (so that lower is better)."""
    if lower_is_better:
        return matrix
    import numpy as np

    return -np.asarray(matrix, dtype=float)


register_summary(Summary(
    "forgetting", "forgetting", lambda m, lower: forgetting(oriented(m, lower)), "lower", "forgetting",
    recorded=True, definition="f_j = M[T, j] - min_{j<=l<T} M[l, j], mean over j < T (of -M if higher is better)"))
register_summary(Summary(
    "bwt", "BWT", lambda m, lower: backward_transfer(oriented(m, lower)), "higher", "forgetting",
    recorded=True, definition="mean_{j<T} (M[j, j] - M[T, j]) (of -M if higher is better)"))


def forgetting_caption(shown: tuple[str, ...]) -> str:
    return ("NLL forgetting (lower is better) / BWT (higher is better), nats, on the NLL[t, j] matrix: "
            "f_j = NLL[T, j] - min_{j<=l<T} NLL[l, j], BWT = mean_j (NLL[j, j] - NLL[T, j])"
            + ("; then the same on the FID[t, j] matrix" if "fid" in shown else "")
            + "; bold: lowest NLL forgetting")


register_layout(SummaryLayout("forgetting", "Forgetting and backward transfer", ("nll", "fid"),
                              forgetting_caption))
