"""One layer's sliding-window attention at 16384 tokens (roberta-base heads, window 512, one global
token) three ways, beside a linear layer of the same model on the same tokens, on this machine:

- the fast backend's blocked SDPA (``roberta2longformer.fast.attention``), and its rate in GFLOP/s
  over the keys it reads;
- FlexAttention with a compiled sliding-window block mask (compile time reported apart);
- a 768 × 768 linear layer over the same tokens, the matrix-multiply rate the floor runs at.

Medians of 5 calls after one untimed. Usage: ``.venv/bin/python scripts/measure_attention_kernels.py``.
"""

from __future__ import annotations

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
