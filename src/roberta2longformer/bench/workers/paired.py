"""The fast backend against its floor in one process, calls alternating: the ratio that separate
processes measure one after the other moves with the machine's load (two inference runs of the
same code on a shared 2-core VM gave 1.37× and 1.18× at 16384 tokens)."""

from __future__ import annotations

import copy
import functools
import statistics
from typing import Any

from ..measure import emit, time_once, worker_main
from ..models import build_model, floor_attention, model_inputs


def measure(params: dict[str, Any]) -> None:
    """Per length: one untimed call of each, then ``repeats`` rounds of (fast, floor); medians, and the
    median of the rounds' ratios."""
    import torch
    import transformers

    from ... import fast

    transformers.logging.set_verbosity_error()
    device, dtype = params["device"], getattr(torch, params["dtype"])
    for length in params["lengths"]:
        model = build_model(params["arch"], params["shape"], length, backend="transformers").to(device, dtype).eval()
        floor = copy.deepcopy(model)
        floor_attention(floor)
        fast.enable(model)
        inputs = model_inputs(params["arch"], params["batch"], length, device)
        calls = {"fast": functools.partial(model, **inputs), "floor": functools.partial(floor, **inputs)}
        seconds: dict[str, list[float]] = {"fast": [], "floor": []}
        with torch.inference_mode():
            for call in calls.values():
                time_once(call, device)
            for _ in range(params["repeats"]):
                for name, call in calls.items():
                    seconds[name].append(time_once(call, device))
        ratios = [a / b for a, b in zip(seconds["fast"], seconds["floor"])]
        emit({
            "length": length,
            "fast_seconds": statistics.median(seconds["fast"]),
            "floor_seconds": statistics.median(seconds["floor"]),
            "x_floor": statistics.median(ratios),
            "ratios": [round(r, 3) for r in ratios],
        })  # fmt: skip
        del model, floor


if __name__ == "__main__":
    worker_main(measure)
