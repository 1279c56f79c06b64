#!/usr/bin/env bash
# The LSG converter (a peer that `roberta2longformer bench` measures against) in its own venv:
# lsg-converter 0.1.9 imports only with an older transformers (4.40.2, tokenizers 0.19.1), so it
# cannot share .venv. `bench` uses .cache/lsg-venv when it exists and leaves LSG out otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${PYTHON:-python3}"
if [ ! -x .cache/lsg-venv/bin/python ]; then
    mkdir -p .cache
    "$py" -m venv .cache/lsg-venv
fi
.cache/lsg-venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0"
.cache/lsg-venv/bin/python -m pip install -q --disable-pip-version-check \
    "transformers==4.40.2" "tokenizers==0.19.1" "lsg-converter==0.1.9" safetensors
.cache/lsg-venv/bin/python -c "import lsg_converter; print('LSG converter ready in .cache/lsg-venv')"
