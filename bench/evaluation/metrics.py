"""Continual-learning summaries of a metric matrix M[t, j] (after segment t, on task j).

For a lower-is-better metric (NLL, FID):
- forgetting f_j = M[T, j] - min_{j <= l < T} M[l, j], averaged over j < T (Chaudhry et al. 2018,
  sign adapted: positive = worse at the end than at its best);
- BWT = mean_{j < T} (M[j, j] - M[T, j]) (negative = the final model is worse on old tasks).
T is the last segment. Both are undefined (NaN) for a single task.
"""
from __future__ import annotations

import numpy as np


def forgetting(matrix) -> float:
    m = np.asarray(matrix, dtype=float)
    last = len(m) - 1
    if last < 1:
        return float("nan")
    return float(np.mean([m[last, j] - m[j:last, j].min() for j in range(last)]))


def backward_transfer(matrix) -> float:
    m = np.asarray(matrix, dtype=float)
    last = len(m) - 1
    if last < 1:
        return float("nan")
    return float(np.mean([m[j, j] - m[last, j] for j in range(last)]))
