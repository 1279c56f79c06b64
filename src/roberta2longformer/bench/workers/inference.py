"""Forward passes of one architecture at one batch size, lengths ascending (each length's peak its own)."""

from __future__ import annotations

import functools
from typing import Any

from ...errors import ConversionError
from ..measure import DeviceMemory, emit, timed, worker_main
from ..models import build_model, long_mode, model_inputs


def measure(params: dict[str, Any]) -> None:
    """One architecture, one batch size, lengths ascending (so each length's peak is its own)."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    device = params["device"]
    dtype = getattr(torch, params["dtype"])
    memory = DeviceMemory(device)

    for length in params["lengths"]:
        try:
            model = (
                build_model(params["arch"], params["shape"], length, backend=params["backend"]).to(device, dtype).eval()
            )
        except ConversionError as error:  # e.g. BigBird is full attention below (5 + 2r)·block tokens
            emit({"length": length, "skipped": str(error)})
            continue
        inputs = model_inputs(params["arch"], params["batch"], length, device)
        context = long_mode(model, params["arch"], length)
        try:
            with torch.inference_mode(), context:
                memory.reset()
                first, seconds = timed(functools.partial(model, **inputs), device, params["repeats"])
                peak = memory.peak_mb()
            emit({"length": length, "seconds": seconds, "first_seconds": first, "peak_mb": peak})
        except (RuntimeError, MemoryError) as error:  # out of memory: longer lengths will not fit either
            emit({"length": length, "error": str(error).splitlines()[0][:200]})
            return
        del model


if __name__ == "__main__":
    worker_main(measure)
