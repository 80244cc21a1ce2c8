#!/usr/bin/env bash
# The schedule study (reports/schedule.md): the claims of Table 1 against the schedule length E
# (passes over batch + memory per incoming batch) and the learning rate. The Table-1 setting
# otherwise: quick profile, Split MNIST / Split Fashion / MNIST-Fashion, each task subsampled to
# 4,000 training images, seeds 0-2, FID/KID/PRDC on the shipped classifier's features. E = 1 is
# the Table-1 study itself (reports/table1/records). Records land in reports/schedule/records/
# (committed); rerunning skips finished cells, so each part resumes after an interruption.
#
#   bash reports/schedule/run.sh a3     # 3a: ocm, ocm-dynamic, reservoir at OCM's memory, E = 3 (lr 1e-3)
#   bash reports/schedule/run.sh a10    # 3a: the same at E = 10 (lr 1e-3)
#   bash reports/schedule/run.sh b10    # 3b: the same at E = 10 with the paper's lr 1e-4
#   bash reports/schedule/run.sh b30    # 3b: Split MNIST, E = 30, lr 1e-4
#   bash reports/schedule/run.sh b100   # 3b: Split MNIST seed 0, E = 100, lr 1e-4 (the paper's schedule)
#   bash reports/schedule/run.sh c3|c10 # 3c: the other rows whose training depends on E
# Extra arguments go to bench.run (e.g. --workers 1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
PART=${1:?"which part: a3 a10 b10 b30 b100 c3 c10"}; shift
CORE="ocm,ocm-dynamic,reservoir[budget=match:ocm]"
# first-k keeps training on its first 3,000 images whatever E is: its E matters; finetune and joint
# are bounds, not claims; lgm and curl are not in the paper's table (3c lists the paper's rows).
OTHERS="cndpm-paper,limix-paper,first-k[train_incoming=true],ocm-iw50"
ALL_STREAMS="split-mnist,split-fashion,mnist-fashion"
case "$PART" in
  a3)   METHODS=$CORE;   STREAMS=$ALL_STREAMS; SEEDS=0,1,2; SET=(--set epochs=3) ;;
  a10)  METHODS=$CORE;   STREAMS=$ALL_STREAMS; SEEDS=0,1,2; SET=(--set epochs=10) ;;
  b10)  METHODS=$CORE;   STREAMS=$ALL_STREAMS; SEEDS=0,1,2; SET=(--set epochs=10 --set lr=0.0001) ;;
  b30)  METHODS=$CORE;   STREAMS=split-mnist;  SEEDS=0,1,2; SET=(--set epochs=30 --set lr=0.0001) ;;
  b100) METHODS=$CORE;   STREAMS=split-mnist;  SEEDS=0;     SET=(--set epochs=100 --set lr=0.0001) ;;
  c3)   METHODS=$OTHERS; STREAMS=$ALL_STREAMS; SEEDS=0,1,2; SET=(--set epochs=3) ;;
  c10)  METHODS=$OTHERS; STREAMS=$ALL_STREAMS; SEEDS=0,1,2; SET=(--set epochs=10) ;;
  *) echo "unknown part '$PART'; valid: a3 a10 b10 b30 b100 c3 c10" >&2; exit 2 ;;
esac
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams "$STREAMS" --seeds "$SEEDS" --profile quick \
    --set max_train_per_task=4000 --set sample_grids=false "${SET[@]}" --out reports/schedule --no-progress "$@"
