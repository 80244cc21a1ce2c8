#!/usr/bin/env bash
# Issue 39, item 7: seeds where they decide. The power table under the claims (reports/table1.md)
# says which pairs three seeds cannot settle but six can; this adds seeds 3-5 to those pairs only,
# at the Table-1 setting (same profile and subsample; records land beside the others in
# reports/table1/records/, and each claim pairs the seeds both rows have):
#   IWVAE50-OCM against OCM on the two Fashion streams, LIMix against OCM on Split Fashion,
#   CN-DPM against OCM on Split MNIST (and OCM itself on all three, the other side of each pair).
# About 2 CPU-hours (ocm-iw50 on MNIST-Fashion is 0.3 h a cell); resumable like run.sh.
#   bash reports/table1/run-more-seeds.sh [--workers 2]
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
COMMON=(--seeds 3,4,5 --profile quick --set max_train_per_task=4000 --set sample_grids=false
        --out reports/table1 --no-progress)
$PY -m bench.run --methods ocm --streams split-mnist,split-fashion,mnist-fashion "${COMMON[@]}" "$@"
$PY -m bench.run --methods cndpm-paper --streams split-mnist "${COMMON[@]}" "$@"
$PY -m bench.run --methods limix-paper,ocm-iw50 --streams split-fashion "${COMMON[@]}" "$@"
$PY -m bench.run --methods ocm-iw50 --streams mnist-fashion "${COMMON[@]}" "$@"
