#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite offline on transformers 5.x, then the conversion
# tests on 4.57.6 (scripts/test_transformers4.sh). Fails if pytest collects no test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Lint, format and architecture first (seconds): the tree stays clean under ruff, and the layers declared
# in pyproject.toml ([tool.importlinter]: no upward import, no cycle) hold.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
PYTHONPATH=src .venv/bin/lint-imports --no-cache
set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    exit "$status"
fi
# The same conversions, verification, streaming and fast attention under transformers 4.57.6 (own venv).
bash scripts/test_transformers4.sh "$@"
