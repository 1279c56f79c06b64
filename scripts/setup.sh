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
