"""Conversion against its floor (safetensors load + save) and the LSG peer, medians of interleaved runs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .measure import describe, median, remove, run_worker, settle
from .models import make_source_checkpoint

LSG_PYTHON = Path(".cache/lsg-venv/bin/python")


def _dir_size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.glob("*.safetensors")) / 2**20


def bench_conversion(
    shapes: Iterable[str], max_length: int, repeats: int, work: Path, log: Callable[[str], None]
) -> list[dict]:
    """Floor, ours (streaming; and in memory), LSG where its venv exists; medians over ``repeats``."""
    rows = []
    if not LSG_PYTHON.exists():
        log(
            f"  the LSG converter (a peer) is left out: its venv {LSG_PYTHON} is missing (bash scripts/setup_lsg.sh builds it)"
        )
    for shape in shapes:
        source = make_source_checkpoint(work / f"source-{shape}", shape)
        methods: dict[str, tuple[str, dict[str, Any]]] = {
            "floor (safetensors load + save)": ("floor", {}),
            "ours, streaming": ("ours", {"mode": "streaming", "verify": False}),
            "ours, in memory": ("ours", {"mode": "in-memory"}),
        }
        if LSG_PYTHON.exists():
            methods["LSG converter"] = ("lsg", {})
        results: dict[str, list[dict]] = {name: [] for name in methods}
        names = list(methods)
        for attempt in range(repeats):  # interleaved and rotated, so drifting load hits every method alike
            for name in names[attempt % len(names) :] + names[: attempt % len(names)]:
                kind, extra = methods[name]
                settle()
                output = work / f"out-{shape}-{kind}-{attempt}-{len(results[name])}"
                params = {"source": str(source), "output": str(output), "max_length": max_length, **extra}
                result = run_worker(kind, python=str(LSG_PYTHON) if kind == "lsg" else None, **params)
                if "error" not in result:
                    result["output_mb"] = _dir_size_mb(output)
                results[name].append(result)
                log(f"  {shape} · {name}: {describe(result)}")
                remove(output)
        settle()
        verify_run = run_worker(
            "ours",
            source=str(source),
            output=str(work / f"verified-{shape}"),
            max_length=max_length,
            mode="streaming",
            verify=True,
        )
        remove(work / f"verified-{shape}")
        floor_seconds = median(results["floor (safetensors load + save)"], "seconds")
        for name, runs in results.items():
            ok = [r for r in runs if "error" not in r]
            if not ok:
                rows.append({"shape": shape, "method": name, "error": runs[0]["error"]})
                continue
            seconds, rss, size = median(ok, "seconds"), median(ok, "peak_rss_mb"), median(ok, "output_mb")
            rows.append(
                {
                    "shape": shape,
                    "method": name,
                    "seconds": seconds,
                    "x_floor_time": seconds / floor_seconds,
                    "peak_rss_mb": rss,
                    "output_mb": size,
                    "rss_x_output": rss / size,
                    "import_rss_mb": median(ok, "import_rss_mb"),
                    "source_mb": _dir_size_mb(source),
                    "runs": len(ok),
                }
            )
        if "error" not in verify_run:
            rows.append(
                {
                    "shape": shape,
                    "method": "ours, verification (separate cost)",
                    "seconds": verify_run["verify_seconds"],
                    "x_floor_time": verify_run["verify_seconds"] / floor_seconds,
                    "peak_rss_mb": verify_run["peak_rss_mb"],
                    "output_mb": None,
                    "rss_x_output": None,
                    "source_mb": _dir_size_mb(source),
                    "runs": 1,
                }
            )
        remove(source)
    return rows
