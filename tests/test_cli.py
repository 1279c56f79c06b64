"""End-to-end CLI tests (convert, verify) and every bad input: one clear sentence, nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import make_source
from roberta2longformer.cli import app

runner = CliRunner()


@pytest.fixture
def source_dir(tmp_path, bpe_tokenizer) -> Path:
    path = tmp_path / "source"
    make_source("roberta", "masked_lm").save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return path


def run(*args: str):
    return runner.invoke(app, [str(a) for a in args])


def nothing_written(parent: Path, name: str) -> bool:
    return not (parent / name).exists() and not any(p.name.startswith(f".{name}.") for p in parent.iterdir())


def test_convert_then_verify_end_to_end(source_dir, tmp_path):
    out = tmp_path / "long"
    result = run("convert", source_dir, out, "--max-length", 128, "--attention-window", 64)
    assert result.exit_code == 0, result.output
    assert "✓ smoke: forward at 128 tokens" in result.output
    report = json.loads((out / "verification.json").read_text())
    assert report["passed"] and report["max_abs_diff"] <= 1e-4 and report["exact_length"] == 32
    # Where verification's time went, stage by stage, in the report and on the screen.
    assert list(report["stage_seconds"]) == ["loading both models", "exact cases", "weights", "smoke"]
    assert all(seconds > 0 for seconds in report["stage_seconds"].values())
    assert "· time: loading both models " in result.output
    card = (out / "README.md").read_text()
    assert "Verification **passed**" in card and "continued masked-LM pretraining" in card
    model = transformers.AutoModelForMaskedLM.from_pretrained(out)
    assert type(model).__name__ == "LongformerForMaskedLM"
    assert transformers.AutoTokenizer.from_pretrained(out).model_max_length == 128

    result = run("verify", source_dir, out, "--json", tmp_path / "r.json")
    assert result.exit_code == 0, result.output
    assert "Verified: max |diff|" in result.output
    assert json.loads((tmp_path / "r.json").read_text())["passed"]


def test_verify_exits_1_when_the_model_differs(source_dir, tmp_path):
    out = tmp_path / "long"
    assert run("convert", source_dir, out, "--max-length", 64, "--attention-window", 64, "--no-smoke").exit_code == 0
    model = transformers.AutoModelForMaskedLM.from_pretrained(out)
    with torch.no_grad():
        model.lm_head.dense.weight.mul_(1.5)
    model.save_pretrained(out)
    result = run("verify", source_dir, out, "--no-smoke")
    assert result.exit_code == 1
    assert "differs from its source" in result.output and "✗" in result.output


def test_force_replaces_an_existing_output(source_dir, tmp_path):
    out = tmp_path / "long"
    out.mkdir()
    (out / "old.txt").write_text("old")
    result = run("convert", source_dir, out, "--max-length", 64, "--attention-window", 16, "--force", "--no-smoke")
    assert result.exit_code == 0, result.output
    assert not (out / "old.txt").exists() and (out / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attention-window", "15"], "--attention-window must be a positive even number"),
        (["--attention-window", "0"], "--attention-window must be a positive even number"),
        (["--max-length", "0"], "--max-length must be a positive whole number"),
        (["--max-length", "-8"], "--max-length must be a positive whole number"),
    ],
)
def test_invalid_options_are_refused(source_dir, tmp_path, extra, message):
    result = run("convert", source_dir, tmp_path / "long", *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert nothing_written(tmp_path, "long")


def test_existing_output_is_refused_without_force(source_dir, tmp_path):
    (tmp_path / "long").mkdir()
    result = run("convert", source_dir, tmp_path / "long")
    assert result.exit_code == 2
    assert "already exists; choose another path or pass --force" in result.output
    assert list((tmp_path / "long").iterdir()) == []


def test_unsupported_architecture_names_the_supported_families(tmp_path):
    path = tmp_path / "gpt2"
    transformers.GPT2Model(transformers.GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50)).save_pretrained(path)
    result = run("convert", path, tmp_path / "long")
    assert result.exit_code == 2
    assert "Source model type 'gpt2' is not supported; supported families are RoBERTa" in result.output
    assert "BERT (bert)" in result.output
    assert nothing_written(tmp_path, "long")


def test_unsupported_head_is_refused(tmp_path):
    path = tmp_path / "causal"
    config = make_source("roberta", "base").config
    config.is_decoder = True
    transformers.RobertaForCausalLM(config).save_pretrained(path)
    result = run("convert", path, tmp_path / "long")
    assert result.exit_code == 2
    assert "RobertaForCausalLM has a head we cannot carry over" in result.output
    assert nothing_written(tmp_path, "long")


def test_missing_source_is_refused(tmp_path):
    result = run("convert", tmp_path / "nowhere", tmp_path / "long")
    assert result.exit_code == 2 and "nowhere does not exist" in result.output
    result = run("convert", "no-such-org/no-such-model", tmp_path / "long")  # could be a hub id: offline, it fails
    assert result.exit_code == 2
    assert "no-such-org/no-such-model is not a local path, and HF_HUB_OFFLINE is set" in result.output
    assert nothing_written(tmp_path, "long")


def test_a_hub_id_without_a_network_fails_at_once_in_one_sentence(tmp_path):
    """Not minutes of the hub client's retries (issue #34: 22 lines of them): one sentence, within seconds."""
    import os
    import subprocess
    import sys
    import time

    environment = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    environment["HF_ENDPOINT"] = "https://127.0.0.1:9"  # nothing listens there: as good as no network
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "roberta2longformer", "convert", "some-org/some-model", str(tmp_path / "out")],
        capture_output=True, text=True, env=environment, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and time.monotonic() - started < 30
    assert done.stderr.strip().splitlines() == [
        "Error: some-org/some-model is not a local path and no network is reachable (127.0.0.1 does not answer); "
        "give a local directory (or builtin:NAME), or go online."
    ]


def test_directory_without_config_is_refused(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("convert", tmp_path / "empty", tmp_path / "long")
    assert result.exit_code == 2
    assert "has no config.json; pass a directory written by save_pretrained()" in result.output


def test_corrupt_checkpoint_is_refused(source_dir, tmp_path):
    weights = source_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = run("convert", source_dir, tmp_path / "long")
    assert result.exit_code == 2
    assert "Could not read" in result.output and "corrupt or truncated" in result.output
    assert nothing_written(tmp_path, "long")


def test_pickle_weights_need_an_explicit_opt_in(tmp_path, bpe_tokenizer):
    path = tmp_path / "pickled"
    source = make_source("roberta", "base")
    source.config.save_pretrained(path)
    torch.save(source.state_dict(), path / "pytorch_model.bin")
    result = run("convert", path, tmp_path / "long")
    assert result.exit_code == 2
    assert "holds only pickle weights" in result.output and "--allow-pickle" in result.output
    assert nothing_written(tmp_path, "long")
    result = run("convert", path, tmp_path / "long", "--allow-pickle", "--max-length", 64, "--attention-window", 16)
    assert result.exit_code == 0, result.output


def test_tokenizer_that_does_not_match_the_model_is_refused(tmp_path, bpe_tokenizer):
    path = tmp_path / "small-vocab"
    make_source("roberta", "base", vocab_size=100).save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    result = run("convert", path, tmp_path / "long")
    assert result.exit_code == 2
    assert "The tokenizer has 320 tokens but the model's vocabulary has 100" in result.output
    assert nothing_written(tmp_path, "long")


def test_failed_verification_writes_nothing(source_dir, tmp_path):
    """random-all redraws every position row, the source's too: the paper's ablation, which differs by design."""
    args = ["--max-length", 64, "--attention-window", 16, "--position-init", "random-all"]
    result = run("convert", source_dir, tmp_path / "long", *args)
    assert result.exit_code == 1
    assert "differs from its source" in result.output
    assert nothing_written(tmp_path, "long")
