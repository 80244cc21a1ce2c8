#!/usr/bin/env bash
# LIMix's gate level against the structure it gives (reports/baselines.md, "LIMix's gate"):
# limix-paper (the task-free reconstruction: a 2,000-image buffer is each task, at most 30
# components) on Split MNIST, seed 0, the Table-1 setting (quick profile, E = 1, 4,000 images per
# task: 10 buffers, so at most 10 components), with the gate's level swept over 0, 25, 50, 100 and
# 160 nats, 90 (the authors' Split-MNIST 30 at ~3 nats per unit of their squared-error loss), and
# the two-level form of their digit scripts (50 below 7 components, then 100: 150 / 300 nats).
# Records land in reports/baselines/limix-gate/records/ (committed); rerunning skips finished
# cells. `python reports/baselines/limix_gate.py` prints the table.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
METHODS="limix-paper[threshold=0],limix-paper[threshold=25],limix-paper[threshold=50],limix-paper[threshold=90],"
METHODS+="limix-paper[threshold=100],limix-paper[threshold=160],limix-paper[threshold=150,raise_at=7,raised_threshold=300]"
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams split-mnist --seeds "${SEEDS:-0}" --profile quick \
    --set max_train_per_task=4000 --set sample_grids=false --out reports/baselines/limix-gate --no-progress "$@"
