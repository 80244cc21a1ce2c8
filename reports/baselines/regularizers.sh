#!/usr/bin/env bash
# The regularizers' weights against what they give (reports/baselines.md, "The standard baselines"):
# EWC's ewc_lambda, SI's si_lambda, MAS's lambda_reg and LwF's alpha swept on Split MNIST, seed 0,
# the Table-1 setting (quick profile, 4,000 images per task; task-aware: 10 passes per task), so
# that a reader sees each row is not a badly chosen constant. Records land in
# reports/baselines/regularizers/records/ (committed); rerunning skips finished cells.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
METHODS="ewc[ewc_lambda=0],ewc[ewc_lambda=1],ewc[ewc_lambda=100],ewc[ewc_lambda=10000],ewc[ewc_lambda=1000000],"
METHODS+="si[si_lambda=0.1],si[si_lambda=1],si[si_lambda=10],si[si_lambda=100],si[si_lambda=1000],"
METHODS+="mas[lambda_reg=0.1],mas[lambda_reg=1],mas[lambda_reg=10],mas[lambda_reg=100],mas[lambda_reg=1000],"
METHODS+="lwf[alpha=0.1],lwf[alpha=1],lwf[alpha=10]"
$PY -m bench.run --methods "${ONLY:-$METHODS}" --streams split-mnist --seeds "${SEEDS:-0}" --profile quick \
    --set max_train_per_task=4000 --set sample_grids=false --out reports/baselines/regularizers --no-progress "$@"
