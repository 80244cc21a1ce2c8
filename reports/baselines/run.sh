#!/usr/bin/env bash
# Every method of the harness on Split-MNIST (reports/baselines.md): seed 0, quick profile at E = 1
# (lr 1e-3), each task subsampled to 4,000 training images (20,000 in all: a 2-core CPU budget),
# FID off. The same profile label as the fidelity study's E = 1 cells, whose records are reused
# (copied, same keys) rather than rerun. Records land in reports/baselines/records/ (committed);
# rerunning skips finished cells, so this resumes. The last line writes the study's page,
# reports/baselines/report.html (not committed).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
OUT=reports/baselines
LABEL='quick[epochs=1,fid_features=none,max_train_per_task=4000,sample_grids=false]'
mkdir -p "$OUT/records"
$PY - "$LABEL" "$OUT" <<'PY'
import json, pathlib, shutil, sys
label, out = sys.argv[1], pathlib.Path(sys.argv[2]) / "records"
for path in pathlib.Path("reports/fidelity/records").glob("*.json"):
    record = json.loads(path.read_text())
    if (record.get("profile_name") == label and record.get("stream") == "split-mnist"
            and not (out / path.name).exists()):
        shutil.copy(path, out / path.name)
PY
$PY -m bench.run --methods "${METHODS:-all}" --streams split-mnist --seeds 0 --profile quick --sweep epochs=1 \
    --set max_train_per_task=4000 --set sample_grids=false --fid-features none --out "$OUT" --no-progress
$PY -m bench.report "$OUT" --html "$OUT/report.html"
