#!/usr/bin/env bash
# Run THERE, on the GPU machine (device tool: carry [".gpu"], timeout_s 600), after gpu-prepare.sh
# here. Two parts, one call each, every step writing into $OUT as it finishes:
#   bash reports/paper-split-mnist/gpu-run.sh checks   (about 8 minutes)
#     1. the CUDA tests of the captured step and the device (graph == eager within float tolerance);
#     2. bench.perf at paper settings: ms/step eager / fused / graph (reservoir, ocm), then the
#        throughput of 1, 2, 4, 8 reservoir cells packed on the GPU, with the block's estimate;
#     3. the same packing under CUDA MPS, when the image has it (without MPS, processes sharing a
#        GPU are time-sliced: their kernels never overlap);
#   bash reports/paper-split-mnist/gpu-run.sh block SECONDS
#     the Split-MNIST paper block (reservoir, ocm, ocm-iw50, ocm-dynamic x seeds 0-2), 12 cells
#     packed on the GPU, at the paper's settings but 1,000 training images per task (a full cell is
#     millions of steps, hours even at 0.3 ms per step; this one about 0.3 million), for at most
#     SECONDS; finished cells' records come back in $OUT/paper-block.tgz.
# Then here: unpack the records into reports/paper-split-mnist/records and write the report.
set -uo pipefail
export PYTHONUNBUFFERED=1 BENCH_DATA_DIR=$PWD/.gpu/data
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/* \
  || { echo "wheel install failed"; exit 1; }
export PYTHONPATH=/tmp/site:$PWD
python3 -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; print(torch.__version__, torch.cuda.get_device_name())" || exit 1
case "${1:-checks}" in
  checks)
    timeout 120 python3 -m pytest -q -x tests/test_static_step.py tests/test_device.py -p no:cacheprovider 2>&1 \
      | tee "$OUT/tests.log" | tail -5
    timeout 240 python3 -m bench.perf --device cuda --profile paper --only step,packing --methods reservoir,ocm \
      --batches 6 --cells 1,2,4,8 --seconds 10 --out "$OUT/perf-cuda-step.md" 2>&1 | tail -25
    if command -v nvidia-cuda-mps-control >/dev/null; then
      nvidia-cuda-mps-control -d && sleep 2
      timeout 150 python3 -m bench.perf --device cuda --profile paper --only packing --methods reservoir \
        --cells 1,4,8 --seconds 10 --out "$OUT/perf-cuda-packing-mps.md" 2>&1 | tail -8
      echo quit | nvidia-cuda-mps-control
    fi
    ;;
  block)
    timeout "${2:-480}" python3 -m bench.run --methods reservoir,ocm,ocm-iw50,ocm-dynamic --streams split-mnist \
      --seeds 0,1,2 --profile paper --set max_train_per_task=1000 --device cuda --workers 12 --cells-per-gpu 12 \
      --out /tmp/paper-block --no-progress --no-wait 2>&1 | tail -5
    tar -C /tmp/paper-block -czf "$OUT/paper-block.tgz" records 2>/dev/null || true
    python3 -m bench.status /tmp/paper-block 2>&1 | tail -20 | tee "$OUT/paper-block-status.txt"
    ;;
  *) echo "usage: gpu-run.sh checks | block SECONDS" >&2; exit 2 ;;
esac
