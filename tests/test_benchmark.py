"""`roberta2longformer bench` end to end, at the smallest settings: it measures, tabulates and plots."""

from __future__ import annotations

import json
import shlex

from click.testing import CliRunner
from test_readme import ROOT, commands

from roberta2longformer.bench.conversion import LSG_PYTHON
from roberta2longformer.cli import app

#: The quick look at a machine that docs/speed.md shows: run here as written, into the test's directory.
DOCUMENTED = [c for c in commands(ROOT / "docs" / "speed.md") if c.startswith("roberta2longformer bench")]


def documented(kind: str) -> list[str]:
    (command,) = [c for c in DOCUMENTED if ("--what startup" in c) == (kind == "startup")]
    return shlex.split(command)[1:]


def test_bench_writes_tables_plots_and_machine_info(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # as written: into out/benchmarks under the working directory, not docs/
    output = tmp_path / "out" / "benchmarks"
    result = CliRunner().invoke(app, documented("quick look"))
    assert result.exit_code == 0, result.output
    assert "| small | ours, streaming |" in result.output and "{'" not in result.output  # tables, not dicts
    assert ("the LSG converter (a peer) is left out" in result.output) != LSG_PYTHON.exists()
    results = json.loads((output / "results.json").read_text())
    assert results["machine"]["cores"] and results["machine"]["torch"]
    conversion = {row["method"]: row for row in results["conversion"]["rows"]}
    floor, ours = conversion["floor (safetensors load + save)"], conversion["ours, streaming"]
    assert floor["x_floor_time"] == 1.0 and ours["x_floor_time"] > 0 and ours["output_mb"] > floor["output_mb"]
    inference = {(r["arch"], r["length"]) for r in results["inference"]["rows"] if "seconds" in r}
    assert inference == {
        (a, 512) for a in ("extended", "longformer", "longformer (fast)", "longformer floor (no attention products)")
    }
    (paired,) = results["inference"]["paired"]  # fast against its floor, alternating in one process
    assert (paired["arch"], paired["length"], len(paired["ratios"])) == ("longformer (fast)", 512, 1)
    assert (
        round(paired["x_floor"], 3) == paired["ratios"][0] == round(paired["fast_seconds"] / paired["floor_seconds"], 3)
    )
    assert {r["arch"] for r in results["training"]["rows"] if "tokens_per_second" in r} == {
        "extended",
        "longformer",
        "longformer (fast)",
    }
    markdown = (output / "results.md").read_text()
    assert (
        "| base" not in markdown
        and "| small | ours, streaming |" in markdown
        and "![Inference](inference.png)" in markdown
        and "| fast ÷ floor (median of rounds) |" in markdown
    )
    assert all((output / name).stat().st_size > 10_000 for name in ("conversion.png", "inference.png", "training.png"))
    # --what paired alone measures that table again and keeps the rest of the inference section.
    args = (
        f"bench -o {output} --what paired --repeats 2 --lengths 512 --batches 1 --model-shape small --archs longformer"
    )
    result = CliRunner().invoke(app, args.split())
    assert result.exit_code == 0, result.output
    again = json.loads((output / "results.json").read_text())["inference"]
    assert again["rows"] == results["inference"]["rows"] and len(again["paired"][0]["ratios"]) == 2


def test_bench_refuses_unknown_parts():
    result = CliRunner().invoke(app, ["bench", "--what", "speed"])
    assert result.exit_code == 2 and "Unknown benchmark" in result.output


def test_bench_startup_times_whole_processes_side_by_side(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    output = tmp_path / "out" / "benchmarks"
    result = CliRunner().invoke(app, documented("startup"))
    assert result.exit_code == 0, result.output
    rows = {row["case"]: row for row in json.loads((output / "results.json").read_text())["startup"]["rows"]}
    assert all("seconds" in row for row in rows.values()), rows
    assert rows["python -c 'import transformers'"]["x_baseline"] == 1.0
    assert rows["roberta2longformer --help"]["baseline"] == "python -c 'import transformers'"
    convert_row = rows["roberta2longformer convert --no-verify (small → 1024)"]
    assert convert_row["baseline"].startswith("floor") and convert_row["x_baseline"] > 0
    verified = rows["roberta2longformer convert, default verification (small → 1024)"]
    assert verified["baseline"].startswith("one transformers Longformer forward at 1024") and verified["x_baseline"] > 0
    assert "## Startup" in (output / "results.md").read_text() and (output / "startup.png").stat().st_size > 10_000
