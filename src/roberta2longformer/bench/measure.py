"""Running one measurement in a fresh interpreter, and timing and memory inside it."""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..runtime import current_rss_mb, peak_rss_mb, reset_peak_rss

#: The directory that holds the ``roberta2longformer`` package: put on ``PYTHONPATH`` for workers run
#: by another interpreter (the LSG peer's venv), which import our stdlib-only modules from it.
PACKAGE_PARENT = Path(__file__).resolve().parents[2]


def run_worker_lines(kind: str, python: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Run ``roberta2longformer.bench.workers.KIND`` in a fresh interpreter; each JSON line it prints
    is one result. A crash (e.g. out of memory at the longest length) adds a last row with the error."""
    command = [python or sys.executable, "-m", f"roberta2longformer.bench.workers.{kind}", json.dumps(params)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    if python is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PACKAGE_PARENT), env.get("PYTHONPATH")]))
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        rows.append({"error": " / ".join(tail) or f"exit {done.returncode}"})
    return rows


def run_worker(kind: str, python: str | None = None, **params: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its result (or its error)."""
    return run_worker_lines(kind, python, **params)[-1]


#: How each measured figure reads in a progress line: (key, label, format, unit).
_FIGURES = (
    ("length", "length", "d", ""), ("seconds", "", ".3f", " s"), ("first_seconds", "first call", ".3f", " s"),
    ("verify_seconds", "verification", ".1f", " s"), ("tokens_per_second", "", ".0f", " tokens/s"),
    ("peak_rss_mb", "peak RSS", ".0f", " MB"), ("peak_mb", "peak memory", ".0f", " MB"), ("output_mb", "output", ".0f", " MB"),
    ("fast_seconds", "fast", ".3f", " s"), ("floor_seconds", "floor", ".3f", " s"), ("x_floor", "×", ".3f", " the floor"),
)  # fmt: skip


def describe(result: dict[str, Any]) -> str:
    """One measurement as people read it (``0.371 s, peak RSS 272 MB``), or why there is none."""
    if "error" in result:
        return f"failed: {result['error'][:200]}"
    if "skipped" in result:
        return f"skipped: {result['skipped'][:200]}"
    return ", ".join(
        f"{label + ' ' if label else ''}{result[key]:{spec}}{unit}"
        for key, label, spec, unit in _FIGURES
        if key in result and result[key] and key != "verify_seconds"
    )


def emit(result: dict[str, Any]) -> None:
    """A worker's result: one JSON line on stdout."""
    print(json.dumps(result), flush=True)


def worker_main(measure: Callable[[dict[str, Any]], None]) -> None:
    """The entry point of a worker module: its parameters are one JSON argument."""
    measure(json.loads(sys.argv[1]))


def resolve_device(asked: str) -> str:
    """``asked``, or for ``"auto"`` the GPU when there is one, else the CPU (imports torch)."""
    if asked != "auto":
        return asked
    import torch  # torch: in the process that measures, not when the command line starts

    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_for(device: str) -> str:
    """What the benchmarks measure in: bfloat16 on a GPU, float32 on a CPU."""
    return "bfloat16" if device == "cuda" else "float32"


def settle() -> None:
    """Flush dirty pages left by the previous case: otherwise the kernel writes them back (and
    throttles writers) during the next case, which then pays for its predecessor's output."""
    if hasattr(os, "sync"):
        os.sync()
    time.sleep(0.5)


def median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


class DeviceMemory:
    """Peak memory of one case: the CUDA allocator's peak on a GPU, else growth of the process's peak RSS."""

    def __init__(self, device: str) -> None:
        import torch  # torch and transformers: in the worker that measures, not when the command line starts

        self.device, self.torch = device, torch

    def reset(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.baseline = self.torch.cuda.memory_allocated() / 2**20
            return
        gc.collect()
        reset_peak_rss()
        self.baseline = current_rss_mb()

    def peak_mb(self) -> float:
        if self.device == "cuda":
            self.torch.cuda.synchronize()
            return self.torch.cuda.max_memory_allocated() / 2**20 - self.baseline
        return peak_rss_mb() - self.baseline


def time_once(fn: Callable[[], Any], device: str) -> float:
    import torch  # torch and transformers: in the worker that measures, not when the command line starts

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def timed(fn: Callable[[], Any], device: str, repeats: int) -> tuple[float, float]:
    """(first call, median of ``repeats`` more) in seconds."""
    first = time_once(fn, device)
    return first, statistics.median(time_once(fn, device) for _ in range(repeats))
