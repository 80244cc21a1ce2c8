#!/usr/bin/env bash
# The Table-1 study (reports/table1.md): every row of the OCM paper's Table 1 and the harness's
# baselines on Split MNIST, Split Fashion and MNIST-Fashion, seeds 0-2, quick profile (E = 1),
# each task subsampled to 4,000 training images (a 2-core CPU budget), FID/KID/PRDC on the shipped
# classifier's features. Records land in reports/table1/records/ (committed); rerunning skips
# finished cells, so this resumes after an interruption. Then: python -m bench.report reports/table1
# (see reports/table1.md; reports/table1/summarize.sh regenerates its tables).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
METHODS="finetune,first-k,first-k[train_incoming=true],reservoir,reservoir[budget=match:ocm],ocm,ocm-iw50,ocm-dynamic,cndpm-paper,limix-paper,lgm,curl,joint"
# the field's standard baselines (issue 35): regularizers and distillation (task-aware), A-GEM and
# MIR at OCM's memory, deep generative replay
METHODS+=",ewc,si,mas,lwf,agem[budget=match:ocm],mir[budget=match:ocm],dgr"
STREAMS=${STREAMS:-split-mnist,split-fashion,mnist-fashion}
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams "$STREAMS" --seeds "${SEEDS:-0,1,2}" --profile quick \
    --set max_train_per_task=4000 --set sample_grids=false --out reports/table1 --no-progress "$@"
