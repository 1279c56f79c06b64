"""A faster self-attention for ``transformers``' Longformer models, with the same results.

``transformers`` computes Longformer's sliding-window attention with chunked ``as_strided``
products that materialise several copies of every score, and for all that is often slower than
full attention on the same input. This backend computes the same function block by block with
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU):

- the sequence (already padded by ``LongformerModel`` to a multiple of the window) is cut into
  blocks of ``w`` queries, ``w`` being the one-sided window; block ``b`` reads the keys of blocks
  ``b-1, b, b+1`` plus every global token, and a boolean mask keeps exactly what transformers keeps:
  keys at most ``w`` positions away that are neither padding nor global, and all global keys
  (which transformers scores in separate columns with the *local* key and value projections);
- rows of global tokens are then recomputed as transformers does: their ``query_global`` attends
  to every token's ``key_global``/``value_global``; padding rows are zero.

Nothing about the model changes but how each layer's ``LongformerSelfAttention`` computes its
forward, for this model instance only: :func:`enable` replaces the bound ``forward`` of those
modules, :func:`disable` restores the class's. Weights, configs and saved files are untouched.
``output_attentions=True`` is refused (the blocked computation never forms the probability
matrices transformers returns); disable the backend to get them.
"""

from __future__ import annotations

import math
import types
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConversionError

_MARK = "_roberta2longformer_fast"


def _self_attention_modules(model: nn.Module) -> Iterator[nn.Module]:
    for module in model.modules():
        if type(module).__name__ in ("LongformerSelfAttention", "LEDEncoderSelfAttention"):
            yield module


def applies_to(model: nn.Module) -> bool:
    """Whether ``model`` has Longformer self-attention layers this backend can compute."""
    return any(True for _ in _self_attention_modules(model))


def enable(model: nn.Module) -> nn.Module:
    """Compute every Longformer self-attention layer of ``model`` with the blocked SDPA backend."""
    modules = list(_self_attention_modules(model))
    if not modules:
        raise ConversionError(
            f"{type(model).__name__} has no Longformer self-attention layers; fast attention applies to "
            "Longformer models (LongformerModel, LongformerFor…) and LED encoders."
        )
    for module in modules:
        module.forward = types.MethodType(blocked_forward, module)
        setattr(module, _MARK, True)
    return model


def disable(model: nn.Module) -> nn.Module:
    """Go back to ``transformers``' own attention code."""
    for module in _self_attention_modules(model):
        if getattr(module, _MARK, False):
            del module.forward  # the instance attribute; the class's forward shows through again
            delattr(module, _MARK)
    return model


def is_enabled(model: nn.Module) -> bool:
    return any(getattr(m, _MARK, False) for m in _self_attention_modules(model))


def _heads(x: torch.Tensor, batch: int, heads: int, head_dim: int) -> torch.Tensor:
    """(batch, length, heads·head_dim) → (batch, heads, length, head_dim)."""
    return x.view(batch, -1, heads, head_dim).transpose(1, 2)


def blocked_forward(
    self,
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor | None = None,
    is_index_masked: torch.Tensor | None = None,
    is_index_global_attn: torch.Tensor | None = None,
    is_global_attn: bool | None = None,
    output_attentions: bool = False,
    **kwargs,
):
    """Drop-in ``forward`` for ``LongformerSelfAttention`` (same arguments, same outputs)."""
    if output_attentions:
        raise ValueError(
            "Fast Longformer attention does not form attention probabilities; call "
            "roberta2longformer.fast.disable(model) to get output_attentions."
        )
    batch, length, _ = hidden_states.shape
    heads, head_dim, w = self.num_heads, self.head_dim, self.one_sided_attn_window_size
    if length % w:
        raise ValueError(f"The sequence ({length}) must be a multiple of the one-sided window ({w}); LongformerModel pads it so.")
    if is_index_masked is None:
        is_index_masked = torch.zeros(batch, length, dtype=torch.bool, device=hidden_states.device)
    if is_index_global_attn is None:
        is_index_global_attn = torch.zeros_like(is_index_masked)
    dropout = self.dropout if self.training else 0.0

    query = _heads(self.query(hidden_states), batch, heads, head_dim)
    key = _heads(self.key(hidden_states), batch, heads, head_dim)
    value = _heads(self.value(hidden_states), batch, heads, head_dim)

    globals_ = _global_slots(is_index_global_attn) if is_global_attn else None
    output = _local_attention(query, key, value, w, is_index_masked, is_index_global_attn, globals_, dropout)
    output = output.masked_fill(is_index_masked[:, :, None], 0.0)  # transformers zeroes padding rows
    if globals_ is not None:
        output = _overwrite_global_rows(self, hidden_states, output, globals_, is_index_masked, dropout)
    return (output,)


class _GlobalSlots:
    """Where the global tokens are: per batch row, up to ``count`` token indices (``valid`` marks real ones)."""

    def __init__(self, is_index_global_attn: torch.Tensor) -> None:
        per_row = is_index_global_attn.sum(dim=1)
        self.count = int(per_row.max())
        # Stable sort puts each row's global positions first, in order (as transformers numbers them).
        order = torch.sort((~is_index_global_attn).to(torch.int8), dim=1, stable=True).indices
        self.index = order[:, : self.count]  # (batch, count)
        self.valid = torch.arange(self.count, device=per_row.device)[None, :] < per_row[:, None]


def _global_slots(is_index_global_attn: torch.Tensor) -> _GlobalSlots | None:
    slots = _GlobalSlots(is_index_global_attn)
    return slots if slots.count > 0 else None


def _gather_rows(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """x (batch, heads, length, d), index (batch, n) → (batch, heads, n, d)."""
    batch, heads, _, d = x.shape
    return x.gather(2, index[:, None, :, None].expand(batch, heads, index.shape[1], d))


def _windows(x: torch.Tensor, w: int) -> torch.Tensor:
    """(batch, heads, length, d) → (batch, blocks, heads, 3w, d): for block b, positions [bw - w, bw + 2w)."""
    batch, heads, length, d = x.shape
    padded = F.pad(x, (0, 0, w, w))
    windows = padded.unfold(2, 3 * w, w)  # (batch, heads, blocks, d, 3w)
    return windows.permute(0, 2, 1, 4, 3)


def _local_attention(query, key, value, w, is_index_masked, is_index_global_attn, globals_, dropout):
    batch, heads, length, d = query.shape
    blocks = length // w
    device = query.device
    # Which keys a block may read: within w of the query, inside the sequence, not padding, not global.
    offsets = torch.arange(3 * w, device=device)[None, :] - w - torch.arange(w, device=device)[:, None]
    band = offsets.abs() <= w  # (w queries, 3w keys), the same for every block
    excluded = F.pad(is_index_masked | is_index_global_attn, (w, w), value=True)  # (batch, length + 2w)
    key_ok = ~excluded.unfold(1, 3 * w, w)  # (batch, blocks, 3w)
    mask = band[None, None] & key_ok[:, :, None, :]  # (batch, blocks, w, 3w)
    # A padding query may find no key at all; let it read itself so that no row is empty (an empty
    # row gives NaN, and NaN gradients). Its output is zeroed below, as transformers zeroes it.
    diagonal = (offsets == 0)[None, None] & is_index_masked.view(batch, blocks, w)[..., None]
    mask = mask | diagonal

    q = query.view(batch, heads, blocks, w, d).transpose(1, 2)  # (batch, blocks, heads, w, d)
    k, v = _windows(key, w), _windows(value, w)
    if globals_ is not None:
        # Every query also reads every global token, through the local key and value projections.
        gk = _gather_rows(key, globals_.index)[:, None].expand(batch, blocks, heads, globals_.count, d)
        gv = _gather_rows(value, globals_.index)[:, None].expand(batch, blocks, heads, globals_.count, d)
        k, v = torch.cat([gk, k], dim=3), torch.cat([gv, v], dim=3)
        global_ok = globals_.valid[:, None, None, :].expand(batch, blocks, w, globals_.count)
        mask = torch.cat([global_ok, mask], dim=3)
    flat = batch * blocks
    out = F.scaled_dot_product_attention(
        q.reshape(flat, heads, w, d),
        k.reshape(flat, heads, -1, d),
        v.reshape(flat, heads, -1, d),
        attn_mask=mask.reshape(flat, 1, w, -1),
        dropout_p=dropout,
    )
    return out.view(batch, blocks, heads, w, d).permute(0, 1, 3, 2, 4).reshape(batch, length, heads * d)


def _overwrite_global_rows(self, hidden_states, output, globals_, is_index_masked, dropout):
    """Global tokens attend to every token with the global projections (as in transformers)."""
    batch, length, _ = hidden_states.shape
    heads, d = self.num_heads, self.head_dim
    global_hidden = hidden_states.gather(1, globals_.index[:, :, None].expand(batch, globals_.count, hidden_states.shape[2]))
    query = _heads(self.query_global(global_hidden), batch, heads, d)
    key = _heads(self.key_global(hidden_states), batch, heads, d)
    value = _heads(self.value_global(hidden_states), batch, heads, d)
    mask = ~is_index_masked[:, None, None, :]
    attended = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=dropout)
    attended = attended.transpose(1, 2).reshape(batch, globals_.count, heads * d)
    rows = globals_.index[:, :, None].expand(batch, globals_.count, heads * d)
    # Slots beyond a row's own global tokens point at distinct non-global tokens: they write back their own values.
    keep = torch.where(globals_.valid[:, :, None], attended, output.gather(1, rows))
    return output.scatter(1, rows, keep)
