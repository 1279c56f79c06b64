"""Continued pretraining and evaluation: packing, masks, Trainer runs, resume after a kill, DDP, BPC."""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import CORPUS, free_port, make_source
from roberta2longformer import ConversionError, convert, save_conversion
from roberta2longformer.cli import app
from roberta2longformer.core.fairseq import SPECIALS, build_tokenizer
from roberta2longformer.train.data import pack, split_documents
from roberta2longformer.train.documents import read_documents
from roberta2longformer.train.evaluation import evaluate, mask_document
from roberta2longformer.train.pretraining import PretrainOptions, pretrain
from roberta2longformer.train.setup import last_complete_checkpoint, readable_log

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "roberta2longformer"]


@pytest.fixture
def documents(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(6):
        # different lengths, and few windows: evaluation reads them all
        (folder / f"doc{i}.txt").write_text(" ".join(CORPUS[i % 4 :: 3]) * (1 + i % 2))
    (tmp_path / "more.jsonl").write_text(json.dumps({"body": " ".join(CORPUS[:8])}) + "\n")
    return folder


@pytest.fixture
def long_model(tmp_path, bpe_tokenizer):
    conversion = convert(
        make_source("roberta", "masked_lm", layer_norm_eps=1e-5), bpe_tokenizer, max_length=64, attention_window=16
    )
    return save_conversion(conversion, None, tmp_path / "long")


def test_documents_split_and_pack_into_exact_blocks(documents, bpe_tokenizer):
    assert len(read_documents([documents])) == 6  # one document per text file
    jsonl = documents.parent / "more.jsonl"
    assert len(read_documents([jsonl], text_field="body")) == 1
    with pytest.raises(ConversionError, match="has no 'text' field"):
        read_documents([jsonl])
    docs = read_documents([documents])
    train, held_out = split_documents(docs, 0.34, seed=0)
    assert (len(train), len(held_out)) == (4, 2) and not set(train["text"]) & set(held_out["text"])
    blocks = pack(docs, bpe_tokenizer, 20)
    stream = [t for text in docs["text"] for t in bpe_tokenizer(text, add_special_tokens=False)["input_ids"] + [2]]
    assert len(blocks) == len(stream) // 18
    rows = blocks["input_ids"]
    assert all(len(r) == 20 and r[0] == 0 and r[-1] == 2 for r in rows)
    assert [t for r in rows for t in r[1:-1]] == stream[: len(rows) * 18]  # separators kept between documents


def test_masks_are_deterministic_per_document(bpe_tokenizer):
    ids = list(range(5, 305)) * 10
    first, labels = mask_document(ids, bpe_tokenizer, seed=3, document=7)
    again, labels_again = mask_document(ids, bpe_tokenizer, seed=3, document=7)
    other, _ = mask_document(ids, bpe_tokenizer, seed=3, document=8)
    assert torch.equal(first, again) and torch.equal(labels, labels_again) and not torch.equal(first, other)
    chosen = labels != -100
    assert 0.12 < chosen.float().mean() < 0.18
    assert 0.7 < (first[chosen] == bpe_tokenizer.mask_token_id).float().mean() < 0.9


def test_bpc_of_a_uniform_model_is_log2_of_the_vocabulary():
    """Hand-checked: all-zero logits give ln(V) nats per masked token; one character per token."""
    letters = "ACDEFGHIKLMNPQRSTVWY"
    symbols = [*SPECIALS, *letters, "<mask>"]
    tokenizer = build_tokenizer(symbols, Path("."), 64)
    config = transformers.RobertaConfig(
        vocab_size=len(symbols),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=66,
        tie_word_embeddings=False,
    )
    model = transformers.RobertaForMaskedLM(config).eval()
    with torch.no_grad():
        model.lm_head.decoder.weight.zero_()
        model.lm_head.bias.zero_()
    texts = ["ACDEFGHIKLMNPQRSTVWY" * 20, "WYVT" * 50]
    result = evaluate(model, tokenizer, texts, seed=0)
    assert result.tokens == result.characters == 600 and result.window == 64 and result.masked > 50
    assert result.loss == pytest.approx(math.log(len(symbols)), abs=1e-5)
    assert result.bpc == pytest.approx(math.log2(len(symbols)), abs=1e-5)


def test_a_log_line_reads_as_words_without_bookkeeping():
    logs = {"eval_loss": 2.5, "eval_model_preparation_time": 0.0021, "eval_runtime": 1.5,
            "eval_samples_per_second": 9.0, "learning_rate": 3e-5, "total_flos": 1e12}  # fmt: skip
    assert readable_log(10, 100, logs) == "step 10/100: held-out loss 2.5, runtime 1.5, learning rate 3.00e-05"


def test_pretrain_resume_recopy_globals_and_evaluate(tmp_path, long_model, documents):
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(long_model)
    options = PretrainOptions(
        max_steps=4,
        batch_size=2,
        save_steps=2,
        eval_steps=2,
        logging_steps=1,
        learning_rate=1e-3,
        held_out=0.34,
        precision="fp32",
    )
    first = pretrain(model, tokenizer, [str(documents)], tmp_path / "run", options)
    assert first["steps"] == 4 and first["block_length"] == 64 and first["global_projections_recopied"] == 2
    options.max_steps, options.resume = 6, True
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    second = pretrain(model, tokenizer, [str(documents)], tmp_path / "run", options)
    assert second["steps"] == 6 and second["resumed_from"].endswith("checkpoint-4")
    trained = transformers.AutoModelForMaskedLM.from_pretrained(second["final"])
    for layer in trained.longformer.encoder.layer:
        torch.testing.assert_close(layer.attention.self.query_global.weight, layer.attention.self.query.weight)
    original = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    assert not torch.equal(trained.lm_head.dense.weight, original.lm_head.dense.weight)
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows if r["loss"]] == list(range(1, 7))  # the resumed run appended, once each
    assert [int(r["step"]) for r in rows if r["eval_loss"]] == [2, 4, 6]  # the last step evaluated once
    assert all(any(r[k] for k in ("loss", "eval_loss", "learning_rate")) for r in rows)  # no empty rows
    assert all(float(r["eval_bpc"]) > 0 for r in rows if r["eval_loss"])
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    with pytest.raises(ConversionError, match="already reached step 6 of --max-steps 6"):
        pretrain(model, tokenizer, [str(documents)], tmp_path / "run", options)  # finished: no step past the end
    texts = list(read_documents([documents])["text"])
    before, after = (evaluate(m, tokenizer, texts) for m in (original, trained))
    assert before.masked == after.masked and after.loss < before.loss  # same masks; 6 steps at lr 1e-3 help


def test_only_new_position_rows_train(tmp_path, long_model, documents):
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(long_model)
    original = {k: v.clone() for k, v in model.state_dict().items()}
    options = PretrainOptions(
        max_steps=3,
        batch_size=2,
        learning_rate=1e-2,
        held_out=0,
        precision="fp32",
        only_positions_beyond=32,
        save_steps=100,
    )
    summary = pretrain(model, tokenizer, [str(documents)], tmp_path / "run", options)
    trained = transformers.AutoModelForMaskedLM.from_pretrained(summary["final"]).state_dict()
    key = "longformer.embeddings.position_embeddings.weight"
    torch.testing.assert_close(trained[key][: 2 + 32], original[key][: 2 + 32])
    assert not torch.equal(trained[key][2 + 32 :], original[key][2 + 32 :])
    assert all(torch.equal(trained[k], v) for k, v in original.items() if k != key)


def test_bad_pretraining_input_is_refused(tmp_path, long_model, documents):
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(long_model)
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81" * 100)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    cases = [
        ([str(tmp_path / "empty.txt")], tmp_path / "a", PretrainOptions(), "holds no text"),
        ([str(tmp_path / "binary.txt")], tmp_path / "b", PretrainOptions(), "is not UTF-8 text"),
        ([str(tmp_path / "missing.txt")], tmp_path / "c", PretrainOptions(), "does not exist"),
        ([str(documents)], tmp_path / "d", PretrainOptions(max_length=128), "beyond the model's 64 positions"),
        ([str(documents)], tmp_path / "used", PretrainOptions(), "is in use"),
    ]
    for sources, output, options, message in cases:
        with pytest.raises(ConversionError, match=message.replace("(", r"\(").replace(")", r"\)")):
            pretrain(model, tokenizer, sources, output, options)


def test_cli_pretrain_and_evaluate(tmp_path, long_model, documents, recwarn):
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "pretrain",
            str(long_model),
            "--data",
            str(documents),
            "-o",
            str(tmp_path / "run"),
            "--max-steps",
            "2",
            "--batch-size",
            "2",
            "--held-out",
            "0.34",
            "--precision",
            "fp32",
            "--gradient-checkpointing",
            "--gradient-accumulation-steps",
            "2",
            "--no-fast-attention",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "Trained 2 steps" in result.output and "bits per character" in result.output
    assert "2/2 [" in result.output  # the Trainer's progress bar (with its ETA), whatever the log level
    assert "deprecated" not in result.output and "pin_memory" not in result.output
    assert not [w for w in recwarn if "deprecated" in str(w.message) or "pin_memory" in str(w.message)]
    result = runner.invoke(
        app,
        [
            "evaluate",
            str(long_model),
            str(tmp_path / "run" / "final"),
            "--data",
            str(documents),
            "--window",
            "32",
            "--json",
            str(tmp_path / "eval.json"),
        ],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "eval.json").read_text())
    assert [r["window"] for r in rows] == [32, 32] and rows[0]["masked"] == rows[1]["masked"] and "BPC" in result.output
    bad = runner.invoke(app, ["pretrain", str(long_model), "--data", str(documents), "-o", str(tmp_path / "run")])
    assert bad.exit_code == 2 and "is in use" in bad.output


def _pretrain_command(model: Path, data: Path, output: Path, steps: int, *extra: str) -> list[str]:
    return [
        *CLI,
        "pretrain",
        str(model),
        "--data",
        str(data),
        "-o",
        str(output),
        "--max-steps",
        str(steps),
        "--batch-size",
        "2",
        "--held-out",
        "0",
        "--precision",
        "fp32",
        "--logging-steps",
        "1",
        *extra,
    ]


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path, long_model, documents):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    output = tmp_path / "run"
    log = (tmp_path / "first-run.log").open("w")  # a file: a pipe nobody reads would fill up and stall the run
    process = subprocess.Popen(
        _pretrain_command(long_model, documents, output, 400, "--save-steps", "2"),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )

    def saved_step() -> int:  # checkpoints come and go (save_total_limit): any complete one from step 4 will do
        latest = last_complete_checkpoint(output) if output.exists() else None
        return int(Path(latest).name.split("-")[1]) if latest else 0

    deadline = time.time() + 300  # generous: a loaded 2-core machine starts the run slowly
    while saved_step() < 4 and time.time() < deadline:
        assert process.poll() is None, (tmp_path / "first-run.log").read_text()[-3000:]  # it must still be running
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert saved_step() >= 4 and not (output / "final").exists()
    last = max(int(p.name.split("-")[1]) for p in output.glob("checkpoint-*") if (p / "trainer_state.json").exists())
    result = subprocess.run(
        _pretrain_command(long_model, documents, output, last + 3, "--resume", "--save-steps", "2"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (
        f"resumed from {output / f'checkpoint-{last}'}" in result.stdout
        and f"Trained {last + 3} steps" in result.stdout
    )
    with (output / "metrics.csv").open() as handle:  # steps the killed run logged past its checkpoint are gone
        steps = [int(row["step"]) for row in csv.DictReader(handle) if row["loss"]]
    assert steps == list(range(1, last + 4)), steps


def test_resume_skips_a_partial_checkpoint_and_says_when_there_is_none(tmp_path, long_model, documents, caplog):
    model = transformers.AutoModelForMaskedLM.from_pretrained(long_model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(long_model)
    options = PretrainOptions(max_steps=2, batch_size=2, save_steps=2, logging_steps=1, held_out=0, precision="fp32")
    pretrain(model, tokenizer, [str(documents)], tmp_path / "run", options)
    complete = tmp_path / "run" / "checkpoint-2"
    partial = tmp_path / "run" / "checkpoint-3"  # as a full disk leaves it: the state written, the weights cut short
    shutil.copytree(complete, partial)
    weights = partial / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert last_complete_checkpoint(tmp_path / "run") == str(complete)
    empty = tmp_path / "empty"
    empty.mkdir()
    options.resume = True
    pretrain(transformers.AutoModelForMaskedLM.from_pretrained(long_model), tokenizer, [str(documents)], empty, options)
    assert "holds no complete checkpoint to resume from; training starts at step 0" in caplog.text


def test_two_process_ddp_run_on_cpu(tmp_path, long_model, documents):
    """torchrun with two CPU (gloo) processes: the Trainer's DDP, Longformer's unused global projections."""
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [
        str(torchrun),
        "--nproc_per_node=2",
        f"--master_port={free_port()}",  # not a fixed one: another run on this machine may hold it
        "-m",
        "roberta2longformer",
        *_pretrain_command(long_model, documents, tmp_path / "ddp", 3)[3:],
    ]
    result = subprocess.run(
        command,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trained 3 steps" in result.stdout and (tmp_path / "ddp" / "final" / "model.safetensors").exists()
    state = json.loads((tmp_path / "ddp" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["global_step"] == 3


def test_evaluate_pads_nystromformer_inputs_to_its_segment_length(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    model = convert(source, bpe_tokenizer, to="nystromformer", max_length=64, num_landmarks=16).model
    texts = [" ".join(CORPUS[:6]), CORPUS[1]]  # windows shorter than 64 tokens: padded, or the model fails
    result = evaluate(model, bpe_tokenizer, texts)
    assert result.window == 64 and result.masked > 0 and math.isfinite(result.bpc)
