"""The blocked computation behind :mod:`roberta2longformer.fast`: a faster self-attention for ``transformers``' Longformer models, with the same results.

``transformers`` computes Longformer's sliding-window attention with chunked ``as_strided``
products that materialise several copies of every score, and for all that is often slower than
full attention on the same input. This backend computes the same function block by block with
``torch.nn.functional.scaled_dot_product_attention`` (fused kernels on CPU and GPU):

- the sequence, of any length, is cut into query blocks of ``B`` tokens (``B`` divides the one-sided
  window ``w``; see :func:`_block_size`; the last block is filled up with slots no query reads).
  Each batch row's keys and values are copied once into a buffer where every block is preceded by
  the global tokens' keys, so that the keys a query block needs (every position within ``w``, and
  the global keys) are one strided view of it, with no copy per block; a mask (built once per
  forward and shared by the layers) keeps exactly what transformers keeps: keys at most ``w``
  positions away that are neither padding nor global, and each global key once (transformers
  scores them in separate columns with the *local* key and value projections);
- rows of global tokens are then recomputed as transformers does: their ``query_global`` attends
  to every token's ``key_global``/``value_global`` (with few global tokens the two projections are
  folded into the queries instead of applied to every token: :func:`_global_attention`); padding
  rows are zero.

Nothing about the model changes but how each layer's ``LongformerSelfAttention`` computes its
forward, for this model instance only: :func:`enable` replaces the bound ``forward`` of those
modules, :func:`disable` restores the class's. Weights, configs and saved files are untouched.
``output_attentions=True`` is refused (the blocked computation never forms the probability
matrices transformers returns); disable the backend to get them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: The attribute under which each enabled layer holds its model's :class:`MaskCache`.
MASK_CACHE = "_roberta2longformer_masks"


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
    if is_index_masked is None:
        is_index_masked = torch.zeros(batch, length, dtype=torch.bool, device=hidden_states.device)
    if is_index_global_attn is None:
        is_index_global_attn = torch.zeros_like(is_index_masked)
    dropout = self.dropout if self.training else 0.0

    query = self.query(hidden_states).view(batch, length, heads, head_dim)
    key = self.key(hidden_states).view(batch, length, heads, head_dim)
    value = self.value(hidden_states).view(batch, length, heads, head_dim)

    globals_ = global_slots(is_index_global_attn) if is_global_attn else None
    cache = getattr(self, MASK_CACHE, None) or MaskCache()
    output, has_padding = _local_attention(
        query, key, value, w, is_index_masked, is_index_global_attn, globals_, dropout, cache
    )
    if has_padding:  # transformers zeroes padding rows
        output.masked_fill_(is_index_masked[:, :, None], 0.0)
    if globals_ is not None:
        output = _overwrite_global_rows(self, hidden_states, output, globals_, is_index_masked, dropout)
    return (output,)


class GlobalSlots:
    """Where the global tokens are: per batch row, up to ``count`` token indices (``valid`` marks real ones)."""

    def __init__(self, is_index_global_attn: torch.Tensor) -> None:
        per_row = is_index_global_attn.sum(dim=1)
        self.count = int(per_row.max())
        # Stable sort puts each row's global positions first, in order (as transformers numbers them).
        order = torch.sort((~is_index_global_attn).to(torch.int8), dim=1, stable=True).indices
        self.index = order[:, : self.count]  # (batch, count)
        self.valid = torch.arange(self.count, device=per_row.device)[None, :] < per_row[:, None]
        # The (batch row, slot) of every real global token, for writing their rows in place.
        self.rows, self.slots = self.valid.nonzero(as_tuple=True)


def global_slots(is_index_global_attn: torch.Tensor) -> GlobalSlots | None:
    """Where the global tokens are, or ``None`` when there are none."""
    slots = GlobalSlots(is_index_global_attn)
    return slots if slots.count > 0 else None


class MaskCache:
    """The masks of the last call, reused while the same padding and global masks come in: every
    layer of one forward gets the very same ``is_index_masked`` tensor from ``LongformerEncoder``.

    One cache per model (:func:`~roberta2longformer.fast.enable` gives all of a model's layers the
    same one), so two models, or two threads each running its own model, never share masks."""

    def __init__(self) -> None:
        self.key: tuple = ()
        self.value: list[torch.Tensor] = []

    def get(self, key: tuple, compute) -> list[torch.Tensor]:
        masked, global_, *rest = key
        full = (masked, global_, _version(masked), _version(global_), *rest)
        same = (
            len(self.key) == len(full) and self.key[0] is masked and self.key[1] is global_ and self.key[2:] == full[2:]
        )
        if not same:
            self.key, self.value = full, compute()
        return self.value


def _version(tensor: torch.Tensor) -> int:
    """In-place changes bump a tensor's version; inference tensors have none (and are recomputed each forward)."""
    try:
        return tensor._version
    except RuntimeError:
        return -1


def _block_size(w: int, globals_count: int) -> int:
    """Query block size: each block reads ``2w/B + 1`` neighbouring blocks of ``G + B`` keys (the global
    keys ride along in every block, masked in all copies but one), so pick the ``B`` that reads fewest."""
    candidates = [b for b in (16, 32, 64, 128, 256, 512) if b <= w and w % b == 0] or [w]
    # Keys read per query, with a per-block overhead that favours blocks the kernels tile well.
    return min(candidates, key=lambda b: ((2 * w // b) + 1) * (globals_count + b) * (1 + 8 / b))


def _row_layout(x: torch.Tensor, w: int, block: int, global_index: torch.Tensor | None) -> torch.Tensor:
    """One batch row's keys (or values), laid out so that every query block's keys are one strided view.

    ``x`` is (length, heads, d). The buffer holds ``k = w / block`` empty blocks, the sequence's
    blocks (the last one filled up with empty slots where ``block`` does not divide the length), and
    ``k`` empty blocks again; each block is preceded by the ``G`` global keys. Query block ``b`` then
    reads buffer blocks ``b … b + 2k``: every key within ``w`` of it, and ``2k + 1`` copies of the
    global keys (one is kept by the mask). Returns (blocks, heads, S, d), a view.
    """
    length, heads, d = x.shape
    k, count = w // block, 0 if global_index is None else global_index.numel()
    full, rest = divmod(length, block)
    blocks = full + bool(rest)
    buffer = x.new_empty(blocks + 2 * k, count + block, heads, d)
    buffer[:k, count:] = 0  # the empty blocks before and after the sequence (masked, but never NaN)
    buffer[k + blocks :, count:] = 0
    buffer[k : k + full, count:] = x[: full * block].view(full, block, heads, d)
    if rest:
        buffer[k + full, count : count + rest] = x[full * block :]
        buffer[k + full, count + rest :] = 0
    if count:
        buffer[:, :count] = x[global_index][None]
    span = (2 * k + 1) * (count + block)
    return buffer.view(-1, heads, d).unfold(0, span, count + block).transpose(-1, -2)


def _row_mask(w, block, count, valid, excluded, query_masked) -> torch.Tensor:
    """(blocks, 1, block, S): what each query may read in its strided window (see :func:`_row_layout`)."""
    length = excluded.shape[0]
    device = excluded.device
    k, blocks = w // block, length // block
    slot = torch.arange((2 * k + 1) * (count + block), device=device)
    which_block, inner = slot // (count + block), slot % (count + block)
    is_global_slot = inner < count
    token = (torch.arange(blocks, device=device)[:, None] - k + which_block[None]) * block + (inner - count)[None]
    inside = (token >= 0) & (token < length) & ~is_global_slot[None]
    readable = inside & ~excluded[token.clamp(0, length - 1)]  # (blocks, S)
    # A slot's key position minus a query's is the same in every block: (block, S), not (blocks, block, S).
    relative = ((which_block - k) * block + inner - count)[None, :] - torch.arange(block, device=device)[:, None]
    mask = readable[:, None, :] & (relative.abs() <= w)[None]
    if count:
        mask |= (is_global_slot & (which_block == k) & valid[inner.clamp(max=count - 1)])[None, None, :]
    if query_masked.any():
        # A padding query may find no key at all; let it read itself so that no row is empty (an empty
        # row gives NaN, and NaN gradients). Its output is zeroed afterwards, as transformers zeroes it.
        mask |= (relative == 0)[None] & inside[:, None, :] & query_masked.view(blocks, block)[:, :, None]
    return mask[:, None]


def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean mask as SDPA's additive float mask: SDPA converts a boolean one on every call
    (``torch.profiler``, 2-core CPU, 16384 tokens: 45 ms of each 0.3 s call)."""
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(~mask, float("-inf"))


def _local_attention(query, key, value, w, is_index_masked, is_index_global_attn, globals_, dropout, cache: MaskCache):
    """Sliding-window attention (plus every global key) for all queries; SDPA on strided views, no score
    matrix. Returns (batch, length, heads·d) and whether any token is padding."""
    batch, length, heads, d = query.shape
    count = globals_.count if globals_ is not None else 0
    block = _block_size(w, count)
    blocks = -(-length // block)
    # Any length: the last block is filled up with padding that no query reads (``fast.enable`` has the
    # model skip transformers' padding to a multiple of the window, which costs every layer).
    filled = blocks * block - length

    def row_masks():
        masked = F.pad(is_index_masked, (0, filled), value=True)
        excluded = masked | F.pad(is_index_global_attn, (0, filled))  # keys transformers removes from the window
        masks = [
            _row_mask(w, block, count, globals_.valid[row] if count else None, excluded[row], masked[row])
            for row in range(batch)
        ]
        return [_additive(mask, query.dtype) for mask in masks] + [bool(is_index_masked.any())]

    *masks, has_padding = cache.get((is_index_masked, is_index_global_attn, w, block, query.dtype), row_masks)
    if filled:
        query = F.pad(query, (0, 0, 0, 0, 0, filled))
    output = query.new_empty(batch, length, heads * d) if batch > 1 else None
    for row in range(batch):  # per row, so that every tensor SDPA sees is a view with one stride per dim
        index = globals_.index[row] if count else None
        out = F.scaled_dot_product_attention(
            query[row].view(blocks, block, heads, d).transpose(1, 2),
            _row_layout(key[row], w, block, index),
            _row_layout(value[row], w, block, index),
            attn_mask=masks[row],
            dropout_p=dropout,
        )
        moved = out.transpose(1, 2)  # contiguous (SDPA's CPU kernels return it so): a view of what SDPA keeps
        # for its backward, which padding and global rows must not overwrite in place; without a graph
        # (inference) it is ours to change.
        keep = out.requires_grad and moved.is_contiguous() and (has_padding or count > 0)
        out = (moved.clone() if keep else moved).reshape(blocks * block, heads * d)[:length]
        if output is None:
            return out[None], has_padding
        output[row] = out
    return output, has_padding


def folds_global_projections(self, count: int) -> bool:
    """Whether the global rows fold ``key_global``/``value_global`` into the few global queries
    instead of projecting every token: cheaper while ``count·heads`` is below the hidden size."""
    return count * self.num_heads < self.embed_dim


def _global_attention(self, hidden_states, globals_, is_index_masked, dropout):
    """(batch, heads, count, d): each global token reads every token through the global projections.

    Projecting every token with ``key_global`` and ``value_global`` costs two full linear layers,
    about an eighth of a roberta-base layer's multiply-adds at any length; a few global queries need
    far less. By associativity the scores ``q·(W_k x + b_k)`` are ``(W_kᵀ q)·x + q·b_k``, and the
    output ``Σ p (W_v x + b_v)`` is ``W_v (Σ p x) + (Σ p) b_v``. With many global tokens projecting
    is cheaper again, and taken (:func:`folds_global_projections`)."""
    batch, length, hidden = hidden_states.shape
    heads, d, count = self.num_heads, self.head_dim, globals_.count
    global_hidden = hidden_states.gather(1, globals_.index[:, :, None].expand(batch, count, hidden))
    query = _heads(self.query_global(global_hidden), batch, heads, d) / d**0.5  # (batch, heads, count, d)
    folded = folds_global_projections(self, count)
    if folded:
        key_weight = self.key_global.weight.view(heads, d, hidden)
        scores = torch.einsum("bhgd,hdi->bhgi", query, key_weight).reshape(batch, heads * count, hidden)
        scores = torch.bmm(scores, hidden_states.transpose(1, 2)).view(batch, heads, count, length)
        # Constant along each row, so the softmax ignores it; added so that key_global.bias gets its
        # (zero) gradient as in transformers, and no parameter goes unused under DistributedDataParallel.
        scores = scores + (query * self.key_global.bias.view(1, heads, 1, d)).sum(-1, keepdim=True)
    else:
        scores = query @ _heads(self.key_global(hidden_states), batch, heads, d).transpose(-1, -2)
    scores = scores.masked_fill(is_index_masked[:, None, None, :], torch.finfo(scores.dtype).min)
    # Softmax in float32 and dropout on the probabilities, as transformers computes them.
    probs = F.dropout(torch.softmax(scores, dim=-1, dtype=torch.float32).type_as(scores), dropout, self.training)
    if not folded:
        return probs @ _heads(self.value_global(hidden_states), batch, heads, d)
    mixed = torch.bmm(probs.reshape(batch, heads * count, length), hidden_states).view(batch, heads, count, hidden)
    attended = torch.einsum("bhgi,hdi->bhgd", mixed, self.value_global.weight.view(heads, d, hidden))
    return attended + probs.sum(-1, keepdim=True) * self.value_global.bias.view(1, heads, 1, d)


def _overwrite_global_rows(self, hidden_states, output, globals_, is_index_masked, dropout):
    """Global tokens attend to every token with the global projections (as in transformers); their rows
    of ``output`` are overwritten in place (a copy of the whole output per layer saved)."""
    attended = _global_attention(self, hidden_states, globals_, is_index_masked, dropout)
    rows, slots = globals_.rows, globals_.slots
    attended = attended[rows, :, slots].reshape(len(rows), self.embed_dim)  # (real global tokens, heads·d)
    return output.index_put_((rows, globals_.index[rows, slots]), attended)
