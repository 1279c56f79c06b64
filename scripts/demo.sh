#!/usr/bin/env bash
# The main job: set up (idempotent), convert the built-in English MiniLM to a 4096-token
# Longformer (verified against its source before anything is written), then embed a long document.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
export HF_HUB_OFFLINE=1
out="${1:-out/minilm-longformer-4096}"
.venv/bin/roberta2longformer convert builtin:all-MiniLM-L6-v2 "$out" --max-length 4096 --force
.venv/bin/python examples/embed_long_document.py "$out"
