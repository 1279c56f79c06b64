"""How long the command line takes to start, and a whole ``convert --no-verify``, each a whole process.

Side by side in one run, interleaved and rotated over ``repeats`` rounds, medians:

- ``roberta2longformer --help`` and ``convert --help`` against ``python -c "import transformers"``;
- ``roberta2longformer convert SOURCE OUT --no-verify`` of a roberta-base-shaped masked-LM checkpoint
  against the whole-process floor: a process that imports transformers and loads and saves the
  same checkpoint with safetensors (:mod:`.workers.floor` with ``whole_process``).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from .measure import describe, median, remove, settle
from .models import make_source_checkpoint


def _command_line() -> list[str]:
    """How users start the command: the console script beside this interpreter, else ``-m``."""
    script = Path(sys.executable).with_name("roberta2longformer")
    return [str(script)] if script.exists() else [sys.executable, "-m", "roberta2longformer"]


def _time_process(command: list[str]) -> float:
    import subprocess

    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise RuntimeError(f"{' '.join(command[:3])} … exited {done.returncode}: {' '.join(tail)}")
    return seconds


def bench_startup(shape: str, max_length: int, repeats: int, work: Path, log: Callable[[str], None]) -> list[dict]:
    source = make_source_checkpoint(work / f"startup-source-{shape}", shape)
    cli = _command_line()
    floor_params = {"source": str(source), "whole_process": True}
    cases: dict[str, tuple[str, Callable[[Path], list[str]]]] = {
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
    }
    runs: dict[str, list[dict]] = {name: [] for name in cases}
    names = list(cases)
    for attempt in range(repeats):  # interleaved and rotated, so drifting load hits every case alike
        for name in names[attempt % len(names) :] + names[: attempt % len(names)]:
            group, command = cases[name]
            output = work / f"startup-out-{attempt}"
            settle()
            try:
                runs[name].append({"seconds": _time_process(command(output))})
            except RuntimeError as error:
                runs[name].append({"error": str(error)})
            log(f"  startup · {name}: {describe(runs[name][-1])}")
            remove(output)
    remove(source)
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
    baselines = {"help": rows[0], "convert": rows[3]}
    for row in rows:
        base = baselines[row["group"]]
        if "seconds" in row and "seconds" in base:
            row["x_baseline"] = row["seconds"] / base["seconds"]
            row["baseline"] = base["case"]
    return rows
