"""The one table of defaults the harness falls back on when a user says nothing (the profiles,
beside it in profiles.py, are the other table: what a profile trains and measures).

Every number here is a choice with a source; change it here and nowhere else.
"""
from __future__ import annotations

# ------------------------------------------------------------------------------ bench.run
# The main job compares methods at one memory budget: the paper's Random (first-k) and reservoir
# get OCM's peak memory on the same stream and seed (on `mini` a fixed 3,000 would be 75% of the
# stream against OCM's few hundred; reports/fidelity.md).
DEFAULT_GRID = {
    "methods": "finetune,first-k[budget=match:ocm],reservoir[budget=match:ocm],ocm,ocm-dynamic,joint",
    "streams": "mini",
    "seeds": "0,1,2",
    "profile": "quick",
    "out": "results",
}

# ------------------------------------------------------------------------- per-stream settings
# Method settings that depend on the stream (OCM-dynamic's expansion threshold and component cap)
# are declared beside the stream (streams/registry.py: `method_settings`), so that a stream of
# one's own carries its own. curl's snapshot period and limix's replay size are one task's length
# ("task", declared in their configs and resolved per cell: methods/core/task_length.py).

# ------------------------------------------------------------------------------- devices
# Profiles that `--device auto` runs on the GPU when there is one (the paper profile: E = 100,
# 50 MC samples, IWAE-1000 on full test sets); smoke and quick cells are small enough that one CPU
# thread per cell is the efficient use of a machine.
GPU_PROFILES = ("paper",)

# ------------------------------------------------------------------------------ scheduling
# Wall seconds per cell relative to finetune: quick profile on mini, harness 0.4.0, the 2-core
# benchmark machine (finetune 10.4 s, ocm-iw50 59.3 s). Only the order in which cells start depends
# on these (bench/planning/schedule.py); methods not listed count as 1.
RELATIVE_COST = {"finetune": 1.0, "curl": 0.8, "ocm": 1.4, "ocm-dynamic": 2.3, "lgm": 2.6, "joint": 3.0,
                 "reservoir": 3.2, "ocm-iw50": 5.7}

# The time estimate a grid of hours prints before it starts (bench/planning/schedule.py), a rough
# one (within a factor of 2-3): training seconds per incoming batch of 64 at E = 1 and one MC
# sample, one core (the Table-1 study's Split-MNIST cells, harness 0.7.0: train_seconds over
# 313 batches; memories at their defaults); methods not listed count as UNKNOWN_METHOD_SECONDS.
# A training step's cost grows with the MC samples by STEP_COST_PER_EXTRA_SAMPLE (4 ms at 1, 87 ms
# at 50: docs/protocol.md), an evaluation by IMPORTANCE_SAMPLE_SECONDS per test image and sample
# (21 ms per image at K = 1000), per component.
TRAIN_SECONDS_PER_BATCH = {"finetune": 0.004, "first-k": 0.19, "reservoir": 0.38, "joint": 0.17, "ocm": 0.12,
                           "ocm-iw50": 0.74, "ocm-dynamic": 0.08, "lgm": 0.087, "curl": 0.02, "cndpm": 0.24,
                           "limix": 0.11, "limix-taskfree": 0.11}
UNKNOWN_METHOD_SECONDS = 0.2
STEP_COST_PER_EXTRA_SAMPLE = 0.42
IMPORTANCE_SAMPLE_SECONDS = 21e-6
ESTIMATE_SHOWN_ABOVE_SECONDS = 3600.0   # a grid shorter than this starts without an estimate

# ------------------------------------------------------------------------------ bench.check
# How much worse than the reference a mean may get before the gate fails: declared with each metric
# (its `tolerance`, bench/metrics/nll.py, fid.py, ...), where its direction and provenance are.
