#!/usr/bin/env bash
# Item 4b of the Table-1 study (reports/table1.md, "The full stream"): seed 0 of the paper's rows
# on the whole Split-MNIST stream (all 60,000 training images, 12,000 per task), quick profile
# otherwise as the grid: does OCM's memory reach the paper's 1.6K, and does any ranking change?
# SEEDS=1,2 ONLY=... adds seeds (the study ran seeds 1 and 2 of every row but ocm-iw50).
# Records land in reports/table1/full/records/ (committed); rerunning resumes.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
METHODS="first-k,first-k[train_incoming=true],reservoir,reservoir[budget=match:ocm],ocm,ocm-iw50,ocm-dynamic,cndpm-paper,limix-paper"
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams split-mnist --seeds "${SEEDS:-0}" --profile quick \
    --set sample_grids=false --out reports/table1/full --no-progress "$@"
