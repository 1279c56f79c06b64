"""Padding masks for Longformer and LED encoders as broadcast views instead of ``L × L`` tensors.

``transformers`` 5's ``LongformerModel.forward`` builds a (batch, 1, L, L) float mask with
``create_bidirectional_mask`` only to slice its first query row back out (``[:, 0, 0, :]``), and
LED's encoder does the same with ``_prepare_4d_attention_mask_inverted``. For a model whose
attention is linear in L that is the one quadratic cost left: at 16384 tokens 1.3 GB (a boolean and
a float copy) and 1.4 s of a 2-layer roberta-base forward on 2 CPU cores (``torch.profiler``: the
``aten::where`` and ``aten::bitwise_and`` on (1, 1, 16384, 16384)).

:func:`install` replaces those two names in the two modeling modules with functions that return the
very same values as a view of one row per sequence (stride 0 along the query axis); where they
cannot promise the same values (another attention implementation, a mask that is already 4D,
extra mask functions) they call the original. Process-wide and idempotent: a module's reference is
replaced once, and only where that module has the name (``transformers`` 4.57 builds a 2D mask).
"""

from __future__ import annotations

import functools
import sys

import torch

_INSTALLED = "_roberta2longformer_broadcast_mask"


def padding_row(attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(batch, 1, 1, L): 0 where a token is attended, the dtype's minimum where it is padding."""
    keep = attention_mask.to(torch.bool)[:, None, None, :]
    return torch.zeros(keep.shape, dtype=dtype, device=attention_mask.device).masked_fill(~keep, torch.finfo(dtype).min)


def _broadcast_bidirectional_mask(original):
    @functools.wraps(original)
    def create_bidirectional_mask(config, inputs_embeds, attention_mask, *args, **kwargs):
        plain = not args and kwargs == {"allow_is_bidirectional_skip": False}  # what LongformerModel passes
        if not plain or config._attn_implementation != "eager" or attention_mask is None or attention_mask.dim() != 2:
            return original(config, inputs_embeds, attention_mask, *args, **kwargs)
        batch, length = attention_mask.shape
        row = padding_row(attention_mask.to(inputs_embeds.device), inputs_embeds.dtype)
        return row.expand(batch, 1, inputs_embeds.shape[1], length)

    setattr(create_bidirectional_mask, _INSTALLED, True)
    return create_bidirectional_mask


def _broadcast_inverted_mask(original):
    @functools.wraps(original)
    def _prepare_4d_attention_mask_inverted(mask, dtype, tgt_len=None):
        batch, length = mask.shape
        # 1 - mask, with every nonzero turned into the minimum and then scaled by (1 - mask): the
        # original's arithmetic on one row, so global tokens (mask 2) keep its positive value too.
        inverted = 1.0 - mask[:, None, None, :].to(dtype)
        row = inverted.masked_fill(inverted.bool(), torch.finfo(dtype).min) * inverted
        return row.expand(batch, 1, tgt_len if tgt_len is not None else length, length)

    setattr(_prepare_4d_attention_mask_inverted, _INSTALLED, True)
    return _prepare_4d_attention_mask_inverted


_REPLACEMENTS = {
    "transformers.models.longformer.modeling_longformer": ("create_bidirectional_mask", _broadcast_bidirectional_mask),
    "transformers.models.led.modeling_led": ("_prepare_4d_attention_mask_inverted", _broadcast_inverted_mask),
}


def install() -> None:
    """Replace the quadratic mask builders of the Longformer and LED modeling modules (see above) that
    are imported: a model being enabled has imported its own, and the other is not loaded for it."""
    for module_name, (name, wrap) in _REPLACEMENTS.items():
        module = sys.modules.get(module_name)
        original = getattr(module, name, None) if module is not None else None
        if original is not None and not getattr(original, _INSTALLED, False):
            setattr(module, name, wrap(original))
