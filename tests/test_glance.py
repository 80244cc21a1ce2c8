"""The answer first (bench/reporting/glance.py): per stream the methods ranked, each against the
best without task boundaries, d and Holm's p checked by hand; joint set apart; two seeds said."""
import math

import numpy as np
from scipy import stats

from bench.reporting.frames import select_cells
from bench.reporting.glance import FEW_SEEDS, REAL, TIED, glance_frame, glance_tables


def record(method, seed, nll, boundaries=False, stream="mini"):
    return {"status": "done", "profile_name": "quick", "harness_version": "0.7.0", "stream": stream,
            "method": method, "seed": seed, "needs_task_boundaries": boundaries, "nll": nll,
            "nll_best_component": nll, "memory": 10, "components": 1, "parameters": 1, "train_seconds": 1.0,
            "eval_seconds": 1.0, "profile": {"eval_k": 16, "eval_test_per_task": 64},
            "nll_matrix": [[nll]], "key": f"{stream}{method}{seed}"}


BEST = [100.0, 101.0, 102.0]
CLOSE = [100.5, 100.2, 103.4]     # d = +0.5, -0.8, +1.4: cannot tell
FAR = [110.0, 111.5, 112.0]       # d = +10, +10.5, +10: real
RECORDS = ([record("ocm", s, v) for s, v in enumerate(BEST)]
           + [record("reservoir", s, v) for s, v in enumerate(CLOSE)]
           + [record("finetune", s, v) for s, v in enumerate(FAR)]
           + [record("first-k", s, 150.0 + s) for s in range(2)]                 # two seeds only
           + [record("joint", s, 90.0 + s, boundaries=True) for s in range(3)])   # lower, but a reference


def test_ranks_differences_and_holm_by_hand():
    frame = glance_frame(select_cells(RECORDS, None)).set_index("method")
    assert frame.loc["ocm", "answer"] == "best" and frame.loc["ocm", "rank"] == 1
    assert frame.loc["joint", "group"] == "reference" and frame.loc["joint", "answer"] == ""
    assert list(frame[frame["group"] == "continual"].sort_values("rank").index) == ["ocm", "reservoir", "finetune", "first-k"]
    p = {m: stats.ttest_rel(np.array(v), np.array(BEST)).pvalue for m, v in (("reservoir", CLOSE), ("finetune", FAR))}
    order = sorted(p, key=p.get)
    holm, running = {}, 0.0
    for i, m in enumerate(order):
        running = max(running, min(1.0, (len(order) - i) * p[m]))
        holm[m] = running
    for m in p:
        assert math.isclose(frame.loc[m, "p_holm"], holm[m], rel_tol=1e-9, abs_tol=1e-12), m
    assert math.isclose(frame.loc["finetune", "mean_difference"], np.mean(np.array(FAR) - BEST))
    assert math.isclose(frame.loc["reservoir", "mean_difference"], np.mean(np.array(CLOSE) - BEST))
    assert frame.loc["finetune", "answer"] == REAL and holm["finetune"] < 0.05
    assert frame.loc["reservoir", "answer"] == TIED
    # d = +50, +50: the same on both seeds, no spread to test: no p, not in Holm's count
    assert math.isnan(frame.loc["first-k", "p_holm"]) and frame.loc["first-k", "answer"] == f"{FEW_SEEDS} (2 paired)"
    # tiers: ocm and reservoir cannot be told apart; finetune is separated; first-k has 2 seeds
    assert [frame.loc[m, "tier"] for m in ("ocm", "reservoir", "finetune", "first-k")] == [1, 1, 2, 2]


def test_the_table_sets_references_apart():
    text = glance_tables(select_cells(RECORDS, None), "text")["mini"]
    lines = [line.split() for line in text.splitlines()[2:7]]
    assert [line[2] for line in lines[:4]] == ["ocm", "reservoir", "finetune", "first-k"]
    assert lines[4][:3] == ["ref.", "1", "joint"] and "+10.17" in text
