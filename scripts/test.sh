#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite offline: lint and the architecture contract, then
# the suite on transformers 5.x, then the conversion tests on 4.57.6 (scripts/test_transformers4.sh).
# Both suites run and are reported even when the first fails; the exit status is non-zero if anything
# failed, and a suite that collects no test fails on purpose. Extra arguments go to pytest.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev || exit 1
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# Lint, format and architecture first (seconds): the tree stays clean under ruff, and the layers declared
# in pyproject.toml ([tool.importlinter]: no upward import, no cycle) hold.
lint=0
.venv/bin/ruff check . || lint=1
.venv/bin/ruff format --check . || lint=1
PYTHONPATH=src .venv/bin/lint-imports --no-cache || lint=1
# One worker per core (pytest-xdist; TEST_WORKERS=1 for one process): the suite is mostly single-threaded Python.
.venv/bin/python -m pytest -n "${TEST_WORKERS:-auto}" --dist worksteal "$@"
main=$?
if [ "$main" -eq 5 ]; then
    echo "pytest collected no tests: failing on purpose" >&2
fi
# The same conversions, verification, streaming and fast attention under transformers 4.57.6 (own venv).
bash scripts/test_transformers4.sh "$@"
second=$?
echo "== lint and architecture: $([ "$lint" -eq 0 ] && echo passed || echo FAILED)"
echo "== transformers 5 suite: $([ "$main" -eq 0 ] && echo passed || echo "FAILED (pytest exit $main)")"
echo "== transformers 4.57 suite: $([ "$second" -eq 0 ] && echo passed || echo "FAILED (exit $second)")"
[ "$lint" -eq 0 ] && [ "$main" -eq 0 ] && [ "$second" -eq 0 ]
