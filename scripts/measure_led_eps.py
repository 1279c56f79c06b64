"""Measure what LED's fixed layer-norm eps (1e-5) costs a BERT source (eps 1e-12): the numbers
behind the LED refusal in targets/led.py and the README.

Converts the real all-MiniLM-L6-v2 to LED with the eps check switched off, verifies the encoder,
then sets every LED layer norm to the source's eps and verifies again.

Run: .venv/bin/python scripts/measure_led_eps.py
"""

from __future__ import annotations

import torch

from roberta2longformer import convert, verify
from roberta2longformer.targets import led

led._check_layer_norm_eps = lambda source: None  # measure what the check prevents
conversion = convert(
    "builtin:all-MiniLM-L6-v2", to="led", max_length=1024, attention_window=512, decoder_max_length=512
)
args = (conversion.source_model, conversion.model, conversion.source_tokenizer)
as_converted = verify(*args, smoke=False, raise_on_failure=False).max_abs_diff
for module in conversion.model.modules():
    if isinstance(module, torch.nn.LayerNorm):
        module.eps = conversion.source_model.config.layer_norm_eps
patched = verify(*args, smoke=False, raise_on_failure=False).max_abs_diff
print(
    f"LED encoder vs all-MiniLM-L6-v2, max |diff|: {as_converted:.1e} with LED's eps 1e-5, {patched:.1e} with the source's eps"
)
