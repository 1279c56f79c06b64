"""A newcomer's first hour (issue 34): documents in the default ``text`` field, quiet output in the user's
words, the cheap checks before the heavy imports, Ctrl-C in training, progress, cards fit for the Hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from huggingface_hub import ModelCard

from helpers import CORPUS
from roberta2longformer.cli import app
from roberta2longformer.core.locations import card_source
from roberta2longformer.runtime import PAUSE_VARIABLE

CLI = [sys.executable, "-m", "roberta2longformer"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1"}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def lines(tmp_path):
    """Six documents as JSON Lines in the default field, ``text``."""
    path = tmp_path / "docs.jsonl"
    rows = [{"text": " ".join(CORPUS[i % 4 :: 3]) * (1 + i % 2)} for i in range(6)]  # few windows to evaluate
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _pretrain(model: Path, data: Path, output: Path, *extra: str) -> list[str]:
    return [*CLI, "pretrain", str(model), "--data", str(data), "-o", str(output), "--max-steps", "2",
            "--batch-size", "2", "--max-length", "32", "--held-out", "0.34", "--precision", "fp32",
            "--logging-steps", "1", "--eval-steps", "1", *extra]  # fmt: skip


def test_evaluate_reads_json_lines_whose_field_is_the_default_text_and_shows_progress(saved_source, lines):
    result = run("evaluate", saved_source(), "--data", lines, "--window", "32")
    assert result.exit_code == 0, result.output
    assert "BPC" in result.output and "Evaluating" in result.output and "document" in result.output


def test_pretrain_output_in_a_file_is_readable_and_its_card_stays_within_final(saved_source, lines, tmp_path):
    """JSON Lines in the default field; no library loading bars, log dicts or terminal escapes in a file."""
    log = tmp_path / "log.txt"
    with log.open("w") as out:
        done = subprocess.run(_pretrain(saved_source(), lines, tmp_path / "run"), stdout=out, stderr=out, env=ENV)
    said = log.read_text()
    assert done.returncode == 0, said[-3000:]
    assert "\x1b" not in said and "{'loss'" not in said and "Loading weights" not in said, said
    assert "WARNING:" not in said and "Trained 2 steps" in said and "loss" in said
    final = tmp_path / "run" / "final"
    text = ModelCard.load(final / "README.md").text
    assert "../" not in text and "checkpoint-" not in text and "None" not in text
    assert (final / "metrics.csv").is_file() and "metrics.csv" in text


def test_ctrl_c_in_training_leaves_no_final_and_says_how_to_resume(saved_source, lines, tmp_path):
    command = _pretrain(saved_source(), lines, tmp_path / "run", "--max-steps", "50")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               env={**ENV, PAUSE_VARIABLE: "training"})  # fmt: skip
    for line in process.stderr:
        if line.rstrip().endswith("paused at training"):
            break
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=120)
    said = process.stderr.read()
    assert code == 130 and "Stopped by SIGINT" in said and "--resume" in said, said
    assert "Traceback" not in said and "Aborted" not in said
    assert not (tmp_path / "run" / "final").exists()


CHEAP = [
    (["convert", "{tmp}/nowhere", "{tmp}/out"], "does not exist"),
    (["convert", "builtin:austen-robreta", "{tmp}/out"], "builtin:"),
    (["convert", "{model}", "{existing}"], "--force"),
    (["resize", "{model}", "{existing}", "--max-length", "128"], "--force"),
    (["verify", "{model}", "{tmp}/nowhere"], "does not exist"),
    (["pretrain", "{model}", "--data", "{tmp}/nowhere.txt", "-o", "{tmp}/run"], "does not exist"),
    (["pretrain", "{model}", "--data", "{tmp}", "-o", "{existing}"], "--resume"),
    (["evaluate", "{model}", "--data", "{tmp}/nowhere.txt"], "does not exist"),
    (["finetune", "{model}", "--train", "{tmp}/nowhere.jsonl", "--eval", "{tmp}/e.jsonl", "-o", "{tmp}/r"], "exist"),
    (["evaluate-embeddings", "{model}", "--data", "{tmp}/nowhere.txt"], "does not exist"),
    (["bench", "-o", "{model}/config.json"], "is a file"),
]


def test_cheap_checks_answer_before_torch_is_imported(tmp_path):
    """Each wrong path, existing output or mistyped name is refused by a process that never imported torch
    (seconds on a busy machine); one process runs every case, and reports what it had imported after each."""
    model, existing = tmp_path / "model", tmp_path / "existing"
    model.mkdir()
    (model / "config.json").write_text("{}")
    existing.mkdir()
    (existing / "kept").write_text("kept")
    cases = [[a.format(tmp=tmp_path, model=model, existing=existing) for a in args] for args, _ in CHEAP]
    script = (
        "import json, sys\nfrom click.testing import CliRunner\nfrom roberta2longformer.cli import app\n"
        "for case in json.loads(sys.argv[1]):\n"
        "    result = CliRunner().invoke(app, case)\n"
        "    print(json.dumps([result.exit_code, result.output, 'torch' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script, json.dumps(cases)], capture_output=True, text=True, env=ENV)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.splitlines()]
    for (args, phrase), (code, output, imported) in zip(CHEAP, answers, strict=True):
        assert code == 2 and phrase in output, (args, output)
        assert not imported, f"{args[0]} imported torch before refusing: {output}"


def test_a_built_in_source_names_its_hub_id_and_licence_and_a_local_one_passes_its_card_on(tmp_path):
    assert card_source("builtin:all-MiniLM-L6-v2") == {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "license": "apache-2.0",
    }
    assert card_source("builtin:austen-roberta") == {"base_model": None, "license": "mit"}
    made = tmp_path / "made"
    made.mkdir()
    (made / "README.md").write_text("---\nbase_model: someone/model\nlicense: cc-by-4.0\n---\n# made here\n")
    assert card_source(made) == {"base_model": "someone/model", "license": "cc-by-4.0"}


def test_cards_and_tokenizer_files_hold_no_python_reprs_or_local_loading_flags(saved_source, tmp_path):
    out = tmp_path / "nys"
    result = run("convert", saved_source(), out, "--to", "nystromformer", "--max-length", 64, "--num-landmarks", 8)
    assert result.exit_code == 0, result.output
    text = (out / "README.md").read_text()
    assert "None" not in text and "segment_means_seq_len=64" in text.replace("`", "")
    assert "pad every input to 64 tokens" in text
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert not {"local_files_only", "is_local", "_commit_hash", "name_or_path"} & set(tokenizer_config)


def test_convert_is_quiet_by_default_and_minus_v_shows_the_libraries_bars(saved_source, tmp_path):
    source = saved_source()
    quiet = run("convert", source, tmp_path / "quiet", "--max-length", 64, "--attention-window", 16)
    assert quiet.exit_code == 0, quiet.output
    assert "Loading weights" not in quiet.output and "\x1b" not in quiet.output and "Converted" in quiet.output
    loud = run("-v", "convert", source, tmp_path / "loud", "--max-length", 64, "--attention-window", 16)
    assert loud.exit_code == 0, loud.output
    assert "Loading weights" in loud.output
