#!/usr/bin/env bash
# The fidelity study (reports/fidelity.md): Split-MNIST, seed 0, quick profile, each task subsampled
# to 4,000 training images (20,000 in all: a 2-core CPU budget), FID off. Records land in
# reports/fidelity/records/ (committed); rerunning skips finished cells, so this resumes.
# Then: python -m bench.report reports/fidelity --sweep epochs ... (see reports/fidelity.md); the
# last line writes the study's page, reports/fidelity/report.html (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=reports/fidelity
METHODS="finetune,first-k,first-k[train_incoming=true],reservoir,reservoir[budget=match:ocm],ocm,ocm-dynamic"
COMMON=(--seeds 0 --profile quick --set max_train_per_task=4000 --set sample_grids=false
        --fid-features none --out "$OUT" --no-progress)

# 1. The paper's schedule at E = 1, 3, 10 passes per incoming batch, the quick profile's lr 1e-3.
$PY -m bench.run --methods "$METHODS" --streams split-mnist --sweep epochs=1,3,10 "${COMMON[@]}"
# 2. E = 10 at the paper's lr 1e-4.
$PY -m bench.run --methods "$METHODS" --streams split-mnist --set epochs=10 --set lr=0.0001 "${COMMON[@]}"
# 3. The authors' stream order (each task sorted by class), E = 1.
$PY -m bench.run --methods "$METHODS" --streams split-mnist-sorted --set epochs=1 "${COMMON[@]}"
# 4. Matched compute: every method 10 or 30 gradient steps per incoming batch.
$PY -m bench.run --methods "$METHODS" --streams split-mnist --sweep steps_per_batch=10,30 "${COMMON[@]}"
# 5. The IWAE-50 variant at E = 1 (50 samples per image: about 20x an ELBO step).
$PY -m bench.run --methods ocm-iw50 --streams split-mnist --sweep epochs=1 "${COMMON[@]}"
# The study's page: every profile's tables and figures, the sweeps over epochs and steps_per_batch.
$PY -m bench.report "$OUT" --html "$OUT/report.html"
