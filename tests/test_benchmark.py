"""`roberta2longformer bench` end to end, at the smallest settings: it measures, tabulates and plots."""

from __future__ import annotations

import json

from click.testing import CliRunner

from roberta2longformer.cli import app


def test_bench_writes_tables_plots_and_machine_info(tmp_path):
    output = tmp_path / "bench"
    result = CliRunner().invoke(app, [
        "bench", "-o", str(output), "--shapes", "small", "--repeats", "1", "--lengths", "512", "--batches", "1",
        "--model-shape", "small", "--training-length", "512", "--archs", "full-sdpa,longformer",
        "--training-cases", "encoder",
    ])
    assert result.exit_code == 0, result.output
    results = json.loads((output / "results.json").read_text())
    assert results["machine"]["cores"] and results["machine"]["torch"]
    conversion = {row["method"]: row for row in results["conversion"]["rows"]}
    floor, ours = conversion["floor (safetensors load + save)"], conversion["ours, streaming"]
    assert floor["x_floor_time"] == 1.0 and ours["x_floor_time"] > 0 and ours["output_mb"] > floor["output_mb"]
    inference = {(r["arch"], r["length"]) for r in results["inference"]["rows"] if "seconds" in r}
    assert inference == {(a, 512) for a in ("full-sdpa", "longformer", "longformer (fast)", "longformer floor (no attention products)")}
    assert {r["arch"] for r in results["training"]["rows"] if "tokens_per_second" in r} == {"full-sdpa", "longformer", "longformer (fast)"}
    markdown = (output / "results.md").read_text()
    assert "| base" not in markdown and "| small | ours, streaming |" in markdown and "![Inference](inference.png)" in markdown
    assert all((output / name).stat().st_size > 10_000 for name in ("conversion.png", "inference.png", "training.png"))


def test_bench_refuses_unknown_parts():
    result = CliRunner().invoke(app, ["bench", "--what", "speed"])
    assert result.exit_code == 2 and "Unknown benchmark" in result.output
