#!/usr/bin/env bash
# Every method of the harness on Split-MNIST (reports/baselines.md): seed 0, quick profile at E = 1
# (lr 1e-3), each task subsampled to 4,000 training images (20,000 in all: a 2-core CPU budget),
# FID/KID/PRDC on the shipped classifier. The rows that are Table-1 rows are the Table-1 study's
# Split-MNIST seed-0 cells (same profile, same keys: copied from reports/table1/records rather than
# rerun); the others, the baselines' other forms and the earlier rules they replaced, run here.
# Records land in reports/baselines/records/ (committed); rerunning skips finished cells, so this
# resumes. The last line writes the study's page, reports/baselines/report.html (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=reports/baselines
LABEL='quick[max_train_per_task=4000,sample_grids=false]'
mkdir -p "$OUT/records"
$PY - "$LABEL" "$OUT" <<'PY'
import json, pathlib, shutil, sys
label, out = sys.argv[1], pathlib.Path(sys.argv[2]) / "records"
for path in pathlib.Path("reports/table1/records").glob("*.json"):
    record = json.loads(path.read_text())
    if (record.get("profile_name") == label and record.get("stream") == "split-mnist"
            and record.get("seed") == 0 and not (out / path.name).exists()):
        shutil.copy(path, out / path.name)
PY
# the baselines at their own defaults, and each earlier rule this version replaced
METHODS="cndpm,cndpm[wake=harness],limix,limix[fresh_optimizer=false],limix[replay_samples=12000],lgm[fresh_optimizer=false],lgm[mix=append],curl[refresh_images=12000],curl[replay_mix=join,replay_binarization=bernoulli]"
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams split-mnist --seeds 0 --profile quick \
    --set max_train_per_task=4000 --set sample_grids=false --out "$OUT" --no-progress "$@"
$PY -m bench.report "$OUT" --html "$OUT/report.html"
