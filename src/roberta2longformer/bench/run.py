"""``bench``'s driver: run the chosen benchmarks, write results.md, results.json and the plots."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..runtime import environment
from .conversion import bench_conversion
from .measure import dtype_for, resolve_device
from .models import ARCHITECTURES
from .report import plot_conversion, plot_inference, plot_startup, plot_training, render_results
from .speed import TRAINING_CASES, bench_inference, bench_paired, bench_training, cases
from .startup import bench_startup

#: The benchmarks ``bench --what`` runs, in the order they run.
#: ``paired`` (the fast backend against its floor, alternating in one process) also runs with ``inference``;
#: on its own it replaces only that table of the inference section.
PARTS = ("startup", "conversion", "inference", "paired", "training")


def run_bench(
    parts: list[str],
    output: Path,
    *,
    shapes: list[str],
    max_length: int,
    repeats: int,
    lengths: list[int],
    batches: list[int],
    model_shape: str,
    training_length: int,
    device: str,
    fast: bool,
    log: Callable[[str], None],
    archs: Sequence[str] = ARCHITECTURES,
    training_cases: Sequence[str] = tuple(TRAINING_CASES),
) -> dict[str, Any]:
    """Run the chosen benchmarks and write ``results.md``, ``results.json`` and PNG plots to ``output``."""
    device = resolve_device(device)
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for part in PARTS:  # sections from earlier runs keep the machine they were measured on
        if part in results and "machine" in results:
            results[part].setdefault("machine", results["machine"])
    machine = results["machine"] = environment() | {"device": device}
    measured = cases(archs, fast=fast)
    dtype = dtype_for(device)
    with tempfile.TemporaryDirectory(prefix="r2l-bench-") as work:
        if "startup" in parts:
            shape = shapes[0]
            log(f"Startup and a whole convert --no-verify ({shape} → {max_length}; {repeats} runs each)")
            rows = bench_startup(shape, max_length, repeats, Path(work), log)
            results["startup"] = {
                "shape": shape,
                "max_length": max_length,
                "repeats": repeats,
                "rows": rows,
                "machine": machine,
            }
        if "conversion" in parts:
            log(f"Conversion to {max_length} tokens ({', '.join(shapes)}; {repeats} runs each)")
            results["conversion"] = {
                "machine": machine,
                "max_length": max_length,
                "rows": bench_conversion(shapes, max_length, repeats, Path(work), log),
            }
        if "inference" in parts or "paired" in parts:
            _inference(
                results, parts, measured, model_shape, lengths, batches, repeats, device, dtype, machine, output, log
            )
        if "training" in parts:
            log(f"Training step ({model_shape} shape, {training_length} tokens, {device})")
            rows = bench_training(measured, model_shape, training_length, 1, repeats, device, log, training_cases)
            results["training"] = {"shape": model_shape, "rows": rows, "machine": machine}
    plot_results(results, output, parts)
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "results.md").write_text(render_results(results), encoding="utf-8")
    log("")
    log(render_results({key: value for key, value in results.items() if key in (*parts, "machine")}).strip())
    log(f"Wrote {output / 'results.md'}, {results_path.name} and the plots")
    return results


def _inference(results, parts, measured, shape, lengths, batches, repeats, device, dtype, machine, output, log) -> None:
    """The inference section (with ``inference``), and the fast backend against its floor, alternating."""
    if "inference" in parts:
        log(f"Inference ({shape} shape, {device}, {dtype})")
        rows = bench_inference(measured, shape, lengths, batches, repeats, device, dtype, log)
        results["inference"] = {"shape": shape, "dtype": dtype, "rows": rows, "machine": machine}
    log(f"Fast attention against its floor, alternating ({shape} shape, {device}, {dtype})")
    paired = bench_paired(measured, shape, lengths, batches, repeats, device, dtype, log)
    section = results.get("inference", {})
    if (section.get("shape"), section.get("dtype")) != (shape, dtype):  # another shape's rows
        section = results["inference"] = {"shape": shape, "dtype": dtype, "rows": [], "machine": machine}
    section["paired"], section["paired_machine"] = paired, machine


def plot_results(results: dict[str, Any], output: Path, parts: Sequence[str] = PARTS) -> None:
    """The PNG plots of the measured ``parts`` of ``results`` (``scripts/plot_benchmarks.py`` draws the
    committed ones again from their results.json, without measuring anything)."""
    device = results.get("machine", {}).get("device", "cpu")
    if "startup" in parts and results.get("startup"):
        plot_startup(results["startup"]["rows"], output / "startup.png")
    if "conversion" in parts and results.get("conversion"):
        plot_conversion(results["conversion"]["rows"], output / "conversion.png", results["conversion"]["max_length"])
    if "inference" in parts and results.get("inference", {}).get("rows"):
        section = results["inference"]
        title = f"forward, eval mode, {section['shape']} shape, {device} {section['dtype']}"
        plot_inference(section["rows"], output / "inference.png", title)
    if "training" in parts and results.get("training", {}).get("rows"):
        section = results["training"]
        length = section["rows"][0].get("length", "?")
        title = f"masked-LM step at {length} tokens, {section['shape']} shape, {device}"
        plot_training(section["rows"], output / "training.png", title)
