#!/usr/bin/env bash
# Idempotent setup: a virtual environment in .venv with the CPU build of PyTorch installed
# *first* (the exact pin takes the wheel on disk; a looser spec would download a CUDA build),
# then this package with the extras named in $1 (default: demo).
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-demo}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$py" -m venv .venv
fi
stamp=".venv/.installed-$extras-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[$extras]"
    touch "$stamp"
fi
# The test suite's real fairseq weights (a protein RoBERTa that a PyPI wheel ships): fetched
# without its dependencies (it pins fairseq and an old torch), unpacked into .cache/assets.
if [[ "$extras" == *dev* ]] && [ ! -f .cache/assets/sapiens/sapiens/models/v1/dict.txt ]; then
    mkdir -p .cache/assets/wheels
    .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps "sapiens==1.0.5" -d .cache/assets/wheels
    .venv/bin/python -m zipfile -e .cache/assets/wheels/sapiens-1.0.5-py3-none-any.whl .cache/assets/sapiens
fi
