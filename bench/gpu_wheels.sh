#!/usr/bin/env bash
# The wheels a lent GPU box (no network; its image has CUDA torch, transformers, accelerate, peft, pandas,
# pyarrow, xxhash, matplotlib, click, jinja2, pyyaml, huggingface_hub...) needs for bench/gpu.py, fetched
# here with the package registry: llm-compressor, compressed-tensors, lm-eval, datasets and what they and
# zoo import that the image lacks (pydantic, loguru, dill, multiprocess, evaluate). Not torch, not vLLM,
# not transformers. The set was found by running the bench in a venv that sees only the image's packages
# (tests/test_gpu_bench.py does that again); the versions are the ones this project's CI runs.
#
#   bash bench/gpu_wheels.sh            # into bench/.wheels/ (ignored), for the box's Python 3.12
#   PY=3.11 WHEELS=/tmp/w bash bench/gpu_wheels.sh   # another Python / folder (the test does this)
#
# Then, on the box (the device tool: carry ["bench/.wheels"]), the command this script prints at the end.
# Install into the interpreter's own site-packages (pip install without --target): dill, which datasets
# uses to fingerprint calibration data, pickles modules outside any "site-packages" path by value and
# fails on pyarrow's types (seen here with --target /tmp/site).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-3.12}"
WHEELS="${WHEELS:-bench/.wheels}"
PINS=(
  llmcompressor==0.14.0.1 compressed-tensors==0.19.0 loguru==0.7.3
  datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  lm-eval==0.4.13 evaluate==0.4.6
  pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5
)
mkdir -p "$WHEELS"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version "$PY" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$WHEELS" "${PINS[@]}"
count=$(ls "$WHEELS"/*.whl | wc -l)
size=$(du -sb "$WHEELS" | cut -f1)
echo "$count wheels, $((size / 1024 / 1024)) MiB ($size bytes) in $WHEELS for Python $PY"
if [ "$size" -gt $((64 * 1024 * 1024)) ]; then
  echo "error: over the 64 MiB a device call carries; fix: drop a wheel the box already has" >&2
  exit 1
fi
cat <<EOF
On the GPU box, from the repository root (about 9 minutes; the bench stops itself at --minutes):
python3 -m pip install -q --no-index --no-deps --no-compile $WHEELS/*.whl && PYTHONUNBUFFERED=1 python3 bench/gpu.py --shape 8b --layers 4 --minutes 8 --out \$OUT/gpu.json --doc docs/gpu.md; cp docs/gpu.md \$OUT/
EOF
