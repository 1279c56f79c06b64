#!/usr/bin/env bash
# The second environment: transformers 4.57.6 (the oldest we support; it needs huggingface_hub < 1.0,
# so it cannot share .venv). Set up once in .cache/tf4-venv (cached: the second run installs nothing),
# then run the conversion, verification, streaming and fast-attention tests in it, offline.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
venv=.cache/tf4-venv
stamp="$venv/.installed-$(cat pyproject.toml scripts/test_transformers4.sh | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    [ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
    pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
    "${pip[@]}" "torch==2.13.0"  # first, as in setup.sh: the CPU wheel on disk
    # One resolve, so that no other requirement (datasets, accelerate…) pulls a newer transformers back in.
    "${pip[@]}" -e . "transformers==4.57.6" "huggingface_hub<1.0" "sentence-transformers>=5.0,<6" pytest "pytest-xdist>=3.5"
    touch "$stamp"
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
"$venv/bin/python" -c "
import transformers
print('transformers', transformers.__version__)
assert transformers.__version__ == '4.57.6', 'the second environment must run transformers 4.57.6'
"
set +e
"$venv/bin/python" -m pytest -p no:cacheprovider -n "${TEST_WORKERS:-auto}" --dist worksteal "$@" \
    tests/test_longformer.py tests/test_targets.py tests/test_families.py tests/test_bart.py tests/test_led.py \
    tests/test_verify.py tests/test_streaming.py tests/test_checkpoints.py tests/test_fast_attention.py \
    tests/test_extended.py
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests under transformers 4.57: failing on purpose" >&2
    exit 1
fi
exit "$status"
