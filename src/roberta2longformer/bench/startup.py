"""How long the command line takes to start, and a whole ``convert --no-verify``, each a whole process.

Side by side in one run, interleaved and rotated over ``repeats`` rounds, medians:

- ``roberta2longformer --help`` and ``convert --help`` against ``python -c "import transformers"``;
- ``roberta2longformer convert SOURCE OUT --no-verify`` of a roberta-base-shaped masked-LM checkpoint
  against the whole-process floor: a process that imports transformers and loads and saves the
  same checkpoint with safetensors (:mod:`.workers.floor` with ``whole_process``);
- the same ``convert`` with its default verification, as a whole process, against one forward pass of
  the converted model at its full length through transformers' own Longformer attention (timed inside
  its process, after loading: :mod:`.workers.forward`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .measure import describe, median, remove, run_worker, settle
from .models import make_source_checkpoint


def _command_line() -> list[str]:
    """How users start the command: the console script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("roberta2longformer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "roberta2longformer"]


def _time_process(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(command[:3])} … exited {done.returncode}: {' '.join(tail)}")
    return seconds


def _time_forward(model: Path, length: int) -> float:
    result = run_worker("forward", model=str(model), length=length)
    if "error" in result:
        raise RuntimeError(result["error"])
    return result["seconds"]


def bench_startup(shape: str, max_length: int, repeats: int, work: Path, log: Callable[[str], None]) -> list[dict]:
    source = make_source_checkpoint(work / f"startup-source-{shape}", shape)
    cli = _command_line()
    floor_params = {"source": str(source), "whole_process": True}
    converted = work / f"startup-converted-{shape}"  # what the forward yardstick runs
    _time_process([*cli, "convert", str(source), str(converted), "--no-verify", "--max-length", str(max_length)])
    cases: dict[str, tuple[str, Callable[[Path], list[str] | float]]] = {
        "python -c 'import transformers'": ("help", lambda out: [sys.executable, "-c", "import transformers"]),
        "roberta2longformer --help": ("help", lambda out: [*cli, "--help"]),
        "roberta2longformer convert --help": ("help", lambda out: [*cli, "convert", "--help"]),
        "floor: import transformers + safetensors load + save": (
            "convert",
            lambda out: [
                sys.executable,
                "-m",
                "roberta2longformer.bench.workers.floor",
                json.dumps({**floor_params, "output": str(out)}),
            ],
        ),
        f"roberta2longformer convert --no-verify ({shape} → {max_length})": (
            "convert",
            lambda out: [*cli, "convert", str(source), str(out), "--no-verify", "--max-length", str(max_length)],
        ),
        f"one transformers Longformer forward at {max_length} tokens (in process, after loading)": (
            "verify",
            lambda out: _time_forward(converted, max_length),
        ),
        f"roberta2longformer convert, default verification ({shape} → {max_length})": (
            "verify",
            lambda out: [*cli, "convert", str(source), str(out), "--max-length", str(max_length)],
        ),
    }
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    names = list(cases)
    for attempt in range(repeats):  # interleaved and rotated, so drifting load hits every case alike
        for name in names[attempt % len(names) :] + names[: attempt % len(names)]:
            group, command = cases[name]
            output = work / f"startup-out-{attempt}"
            settle()
            try:
                timed = command(output)  # a command line to time from outside, or seconds measured inside
                runs[name].append({"seconds": timed if isinstance(timed, float) else _time_process(timed)})
            except RuntimeError as error:
                runs[name].append({"error": str(error)})
            log(f"  startup · {name}: {describe(runs[name][-1])}")
            remove(output)
    remove(source), remove(converted)
    rows = []
    for name, (group, _) in cases.items():
        failed = [r for r in runs[name] if "error" in r]
        if failed:
            rows.append({"case": name, "group": group, "error": failed[0]["error"]})
            continue
        rows.append(
            {
                "case": name,
                "group": group,
                "seconds": median(runs[name], "seconds"),
                "runs": len(runs[name]),
                "all_seconds": [r["seconds"] for r in runs[name]],
            }
        )
    baselines = {group: next(row for row in rows if row["group"] == group) for group in ("help", "convert", "verify")}
    for row in rows:
        base = baselines[row["group"]]
        if "seconds" in row and "seconds" in base:
            row["x_baseline"] = row["seconds"] / base["seconds"]
            row["baseline"] = base["case"]
    return rows
