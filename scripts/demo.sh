#!/usr/bin/env bash
# The main job: set up (idempotent); convert the built-in English RoBERTa (128 tokens, pretrained
# on five Austen novels) to a 1024-token Longformer, verified against its source before anything
# is written; then measure both on the held-out novel (masked-LM bits per character).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
export HF_HUB_OFFLINE=1
out="${1:-out}"
.venv/bin/roberta2longformer convert builtin:austen-roberta "$out/austen-longformer-1024" \
    --max-length 1024 --attention-window 128 --force
.venv/bin/python scripts/austen.py .cache/austen   # Persuasion, held out (Debian package)
.venv/bin/roberta2longformer evaluate builtin:austen-roberta "$out/austen-longformer-1024" \
    --data .cache/austen/heldout --json "$out/austen-evaluation.json"
