"""One layer's sliding-window attention at 16384 tokens (roberta-base heads, window 512, one global
token) several ways, beside a linear layer of the same model on the same tokens, on this machine:

- the fast backend's blocked SDPA (``roberta2longformer.fast.attention``), and its rate in GFLOP/s
  over the keys it reads, at the block size it picks and at the others it could;
- the same blocks through explicit scores (batched matrix products, an in-place softmax), a few
  blocks at a time so that the scores stay in cache: the alternative to SDPA's fused kernel;
- FlexAttention with a compiled sliding-window block mask (compile time reported apart);
- a 768 × 768 linear layer over the same tokens, the matrix-multiply rate the floor runs at.

Medians of 5 calls after one untimed. Usage: ``.venv/bin/python scripts/measure_attention_kernels.py``.
"""

from __future__ import annotations

import functools
import statistics
import time

import torch

from roberta2longformer.fast import attention

LENGTH, HEADS, HEAD_DIM, WINDOW = 16384, 12, 64, 256  # one-sided window


def median_seconds(fn, repeats: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _blocked_with(block: int, cache, q, k, v, masked, global_, slots):
    """The backend's blocked attention with its block size forced to ``block`` (masks kept in ``cache``)."""
    chosen = attention._block_size
    attention._block_size = lambda window, count: block
    try:
        return attention._local_attention(q, k, v, WINDOW, masked, global_, slots, 0.0, cache)
    finally:
        attention._block_size = chosen


def _explicit_scores(q, k, v, masked, global_, block: int, slots, chunk: int) -> torch.Tensor:
    """The backend's blocks and mask, with the scores formed: ``baddbmm`` (mask + q·kᵀ), softmax in place, ``bmm``."""
    heads, d = q.shape[2:]
    index = slots.index[0]
    keys, values = (attention._row_layout(t[0], WINDOW, block, index) for t in (k, v))  # (blocks, heads, S, d)
    bias = attention._additive(
        # Keys the backend removes from the window: padding and the global tokens (read in their own slots).
        attention._row_mask(WINDOW, block, slots.count, slots.valid[0], masked[0] | global_[0], masked[0]),
        q.dtype,
    )
    queries = q[0].view(-1, block, heads, d).transpose(1, 2)
    blocks, span = keys.shape[0], keys.shape[2]
    out = torch.empty(blocks, heads, block, d)
    for start in range(0, blocks, chunk):
        part = slice(start, min(start + chunk, blocks))
        n = part.stop - part.start
        keys_part = keys[part].reshape(n * heads, span, d)
        scores = torch.baddbmm(
            bias[part].expand(-1, heads, -1, -1).reshape(n * heads, block, span),
            queries[part].reshape(n * heads, block, d),
            keys_part.transpose(1, 2),
            alpha=d**-0.5,
        )
        torch.softmax(scores, dim=-1, out=scores)
        torch.bmm(scores, values[part].reshape(n * heads, span, d), out=out[part].view(n * heads, block, d))
    return out


def main() -> None:
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, LENGTH, HEADS, HEAD_DIM) for _ in range(3))
    masked = torch.zeros(1, LENGTH, dtype=torch.bool)
    global_ = masked.clone()
    global_[0, 0] = True
    slots = attention.global_slots(global_)
    cache = attention.MaskCache()
    block = attention._block_size(WINDOW, slots.count)
    keys_read = (2 * WINDOW // block + 1) * (slots.count + block)

    x, weight = torch.randn(LENGTH, HEADS * HEAD_DIM), torch.randn(HEADS * HEAD_DIM, HEADS * HEAD_DIM)
    with torch.inference_mode():
        linear = median_seconds(lambda: x @ weight)
        blocked = median_seconds(
            lambda: attention._local_attention(q, k, v, WINDOW, masked, global_, slots, 0.0, cache)
        )
    linear_rate = 2 * LENGTH * weight.numel() / linear / 1e9
    blocked_rate = 4 * LENGTH * HEADS * keys_read * HEAD_DIM / blocked / 1e9
    print(f"linear 768×768 over {LENGTH} tokens: {linear:.3f} s ({linear_rate:.0f} GFLOP/s)")
    print(
        f"fast backend, blocked SDPA (block {block}, {keys_read} keys read per query, "
        f"{2 * WINDOW + 1 + slots.count} needed): {blocked:.3f} s ({blocked_rate:.0f} GFLOP/s)"
    )
    with torch.inference_mode():
        for other in (16, 32, 64, 128):
            if other == block:
                continue
            call = functools.partial(_blocked_with, other, attention.MaskCache(), q, k, v, masked, global_, slots)
            seconds = median_seconds(call)
            print(f"  blocked SDPA with block {other}: {seconds:.3f} s ({seconds / blocked:.2f}× the chosen block)")
        for chunk in (2, 4, 8):
            seconds = median_seconds(functools.partial(_explicit_scores, q, k, v, masked, global_, block, slots, chunk))
            print(f"  explicit scores, {chunk} blocks at a time: {seconds:.3f} s ({seconds / blocked:.2f}× SDPA)")

    from torch.nn.attention.flex_attention import create_block_mask, flex_attention

    def window(batch, head, query, key):
        return ((query - key).abs() <= WINDOW) | (key == 0) | (query == 0)

    qt, kt, vt = (t.transpose(1, 2).contiguous() for t in (q, k, v))
    started = time.perf_counter()
    mask = create_block_mask(window, None, None, LENGTH, LENGTH, device="cpu")
    compiled = torch.compile(flex_attention)
    with torch.no_grad():
        compiled(qt, kt, vt, block_mask=mask)
        compile_seconds = time.perf_counter() - started
        flex = median_seconds(lambda: compiled(qt, kt, vt, block_mask=mask))
    print(f"FlexAttention, compiled sliding-window block mask: {flex:.3f} s (compiling: {compile_seconds:.1f} s)")


if __name__ == "__main__":
    main()
