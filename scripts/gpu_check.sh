#!/usr/bin/env bash
# The fast attention backend's GPU checks in one run, for a machine with a CUDA device whose python3
# already holds PyTorch with CUDA, transformers, click, matplotlib and pytest (as the device tool's
# machines do; nothing is downloaded): the equivalence tests on CUDA in float32, float16 and bfloat16
# (tests/test_fast_attention.py, which skips its CUDA cases elsewhere), then `bench --device cuda`
# (bfloat16) at 4096 and 16384 tokens, roberta-base shape: forward and training step against
# transformers' Longformer and full attention (SDPA, which picks flash attention on a GPU).
# Writes into $OUT/cuda (default docs/benchmarks/cuda): results.md, results.json, plots, tests.log.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-docs/benchmarks}/cuda"
mkdir -p "$out"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'EOF'
import torch
assert torch.cuda.is_available(), "scripts/gpu_check.sh needs a CUDA device"
print("torch", torch.__version__, "on", torch.cuda.get_device_name())
EOF
# --no-deps, no build isolation: the package's metadata (its version) without touching the machine's torch.
python3 -m pip install -q --no-deps --no-build-isolation -e . || echo "(not installed; running from src/)"
tests=0  # the benchmark runs even where a test fails; the script's exit status says so at the end
python3 -m pytest -q -p no:cacheprovider tests/test_fast_attention.py 2>&1 | tee "$out/tests.log" || tests=$?
bench="python3 -m roberta2longformer bench --device cuda --model-shape base --archs extended,longformer --repeats 5"
$bench --what inference,training --lengths 4096,16384 --batches 1 --training-length 4096 -o "$out"
$bench --what training --training-length 16384 -o "$out/training-16384"
exit "$tests"
