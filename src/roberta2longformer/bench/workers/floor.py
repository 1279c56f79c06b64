"""The conversion floor: reading the source once and writing it once with safetensors (torch and
safetensors only). With ``whole_process`` it is the startup benchmark's floor instead: a process that
also imports transformers, as any converter must, timed from outside."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ...runtime import peak_rss_mb
from ..measure import emit, worker_main


def measure(params: dict[str, Any]) -> None:
    if params.get("whole_process"):
        import transformers  # noqa: F401  (what the whole-process floor pays for)
    from safetensors.torch import load_file, save_file

    Path(params["output"]).mkdir(parents=True)
    baseline = peak_rss_mb()
    started = time.perf_counter()
    tensors = load_file(Path(params["source"]) / "model.safetensors")
    save_file(tensors, Path(params["output"]) / "model.safetensors", metadata={"format": "pt"})
    emit({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": baseline})


if __name__ == "__main__":
    worker_main(measure)
