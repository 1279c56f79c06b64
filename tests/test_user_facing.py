"""What a user sees: model cards with Hugging Face's front matter, reports that say what ran where,
refusals instead of numbers that cannot be right, messages printed once, files with normal permissions."""

from __future__ import annotations

import csv
import json
import math
import os
import stat

import pytest
import torch
import transformers
from click.testing import CliRunner
from huggingface_hub import ModelCard

from helpers import CORPUS, make_source
from roberta2longformer import convert, save_conversion, verify
from roberta2longformer.cli import app
from roberta2longformer.core.locations import hub_id, model_name, source_license
from roberta2longformer.train.pretraining import PretrainOptions, pretrain

runner = CliRunner()
EPS = {"layer_norm_eps": 1e-5}


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


def card(directory) -> ModelCard:
    return ModelCard.load(directory / "README.md")


@pytest.fixture
def licensed_source(saved_source):
    """A tiny masked-LM source whose own model card names its license."""
    path = saved_source("roberta", "masked_lm", **EPS)
    (path / "README.md").write_text("---\nlicense: mit\nlanguage: en\n---\n# a tiny RoBERTa\n", encoding="utf-8")
    return path


def test_the_model_card_has_hugging_face_front_matter_and_the_heads_auto_class(licensed_source, tmp_path):
    out = tmp_path / "long"
    assert run("convert", licensed_source, out, "--max-length", 64, "--attention-window", 16).exit_code == 0
    data = card(out).data
    assert data.library_name == "transformers" and data.license == "mit" and data.pipeline_tag == "fill-mask"
    assert {"longformer", "long-context"} <= set(data.tags)
    assert data.base_model is None  # a local directory is not a hub model
    text = card(out).text
    assert "AutoModelForMaskedLM.from_pretrained" in text and "from transformers import AutoModel," not in text
    assert f"converted from `{licensed_source.name}`" in text and str(licensed_source) not in text.split("\n")[0]
    assert "the masked-LM head" in text and "the pooler" not in text  # a masked-LM source has no pooler


def test_an_encoder_decoder_card_loads_with_seq2seq_and_says_what_had_no_place(saved_source, tmp_path):
    out = tmp_path / "led"
    source = saved_source("roberta", "masked_lm", **EPS)
    result = run(
        "convert",
        source,
        out,
        "--to",
        "led",
        "--max-length",
        64,
        "--attention-window",
        16,
        "--decoder-max-length",
        32,
        "--no-smoke",
    )
    assert result.exit_code == 0, result.output
    assert card(out).data.pipeline_tag == "text2text-generation"
    text = card(out).text
    assert "AutoModelForSeq2SeqLM" in text and "LED has no place for the source's lm_head weights" in text
    assert "the masked-LM head" not in text.split("Carried over from the source:")[1].split(".")[0]


def test_a_nystromformer_card_says_to_pad_and_drop_the_mask(saved_source, tmp_path):
    out = tmp_path / "nys"
    assert (
        run("convert", saved_source(), out, "--to", "nystromformer", "--max-length", 64, "--num-landmarks", 8).exit_code
        == 0
    )
    assert "padding='max_length'" in card(out).text and "pass no attention_mask" in card(out).text


def test_hub_ids_and_licenses_of_built_in_models():
    assert hub_id("builtin:all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"
    assert hub_id("builtin:austen-roberta") is None and hub_id("FacebookAI/roberta-base") == "FacebookAI/roberta-base"
    assert source_license("builtin:all-MiniLM-L6-v2") == "apache-2.0"
    assert model_name("/definitely/not/here") == "/definitely/not/here"


def test_a_resized_models_card_names_the_model_not_its_absolute_path(saved_source, tmp_path):
    long = tmp_path / "long-64"
    assert (
        run("convert", saved_source(), long, "--max-length", 64, "--attention-window", 16, "--no-smoke").exit_code == 0
    )
    resized = tmp_path / "long-128"
    assert run("resize", long, resized, "--max-length", 128, "--no-smoke").exit_code == 0
    title = next(line for line in card(resized).text.splitlines() if line.startswith("# "))
    assert "`long-64`" in title and str(tmp_path) not in title


def test_the_verification_report_records_versions_and_the_device(saved_source, tmp_path):
    out = tmp_path / "long"
    assert (
        run("convert", saved_source(), out, "--max-length", 64, "--attention-window", 16, "--no-smoke").exit_code == 0
    )
    environment = json.loads((out / "verification.json").read_text())["environment"]
    assert environment["transformers"] == transformers.__version__ and environment["torch"] == torch.__version__
    assert environment["roberta2longformer"] and environment["device"] == "cpu" and environment["cores"]


@pytest.mark.parametrize("extra", [[], ["--in-memory"]])
def test_outputs_have_the_users_normal_permissions(saved_source, tmp_path, extra):
    out = tmp_path / "long"
    previous = os.umask(0o022)
    try:
        assert (
            run(
                "convert", saved_source(), out, "--max-length", 64, "--attention-window", 16, "--no-smoke", *extra
            ).exit_code
            == 0
        )
    finally:
        os.umask(previous)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}
    assert stat.S_IMODE(out.stat().st_mode) == 0o755


@pytest.fixture
def documents(tmp_path):
    path = tmp_path / "docs"
    path.mkdir()
    for i in range(3):
        (path / f"doc{i}.txt").write_text(" ".join(CORPUS[i::3]) * 3, encoding="utf-8")
    return path


@pytest.fixture
def converted_base(saved_source, tmp_path):
    """A converted model without a masked-LM head (as from the built-in MiniLM)."""
    out = tmp_path / "base-long"
    assert (
        run(
            "convert", saved_source("roberta", "base"), out, "--max-length", 64, "--attention-window", 16, "--no-smoke"
        ).exit_code
        == 0
    )
    return out


def test_evaluate_and_pretrain_refuse_a_model_without_a_masked_lm_head(converted_base, documents, tmp_path):
    evaluated = run("evaluate", converted_base, "--data", documents)
    assert evaluated.exit_code == 2 and "has no masked-LM head" in evaluated.output and "lm_head" in evaluated.output
    assert "nan" not in evaluated.output
    trained = run("pretrain", converted_base, "--data", documents, "-o", tmp_path / "run", "--max-steps", 2)
    assert trained.exit_code == 2 and "has no masked-LM head" in trained.output
    assert not (tmp_path / "run").exists()


@pytest.fixture
def broken_model(saved_source, tmp_path):
    """A converted masked-LM model with NaN in a weight every input reads."""
    out = tmp_path / "long"
    assert (
        run("convert", saved_source(), out, "--max-length", 64, "--attention-window", 16, "--no-smoke").exit_code == 0
    )
    model = transformers.AutoModelForMaskedLM.from_pretrained(out)
    with torch.no_grad():
        model.lm_head.dense.weight[0, 0] = float("nan")
    model.save_pretrained(out)
    return out


def test_a_nan_loss_is_an_error_not_a_result(broken_model, documents, tmp_path):
    evaluated = run("evaluate", broken_model, "--data", documents)
    assert evaluated.exit_code == 2 and "not a number a model can score" in evaluated.output
    trained = run(
        "pretrain",
        broken_model,
        "--data",
        documents,
        "-o",
        tmp_path / "run",
        "--max-steps",
        3,
        "--batch-size",
        1,
        "--logging-steps",
        1,
        "--held-out",
        0,
        "--precision",
        "fp32",
    )
    assert trained.exit_code == 2 and "loss became nan" in trained.output
    assert not (tmp_path / "run" / "final").exists()


def test_every_evaluation_inside_pretrain_scores_the_same_masked_tokens(saved_source, documents, tmp_path):
    """With a learning rate of 0 the weights never change, so every held-out loss must be the same."""
    path = saved_source()
    model = transformers.AutoModelForMaskedLM.from_pretrained(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    long = convert(model, tokenizer, max_length=32, attention_window=16)
    save_conversion(long, None, tmp_path / "long")
    steps = dict(max_steps=3, eval_steps=1, logging_steps=1, save_steps=10)
    options = PretrainOptions(**steps, batch_size=8, learning_rate=0.0, held_out=0.34, precision="fp32")
    model = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "long")
    summary = pretrain(model, long.tokenizer, [str(documents)], tmp_path / "run", options, source_name="long")
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        losses = {float(row["eval_loss"]) for row in csv.DictReader(handle) if row["eval_loss"]}
    assert len(losses) == 1 and math.isclose(losses.pop(), summary["eval_loss"], rel_tol=1e-6)
    data = card(tmp_path / "run" / "final").data
    assert data.pipeline_tag == "fill-mask" and "continued-pretraining" in data.tags
    assert "Held-out masked-LM loss" in card(tmp_path / "run" / "final").text
    assert stat.S_IMODE((tmp_path / "run" / "final" / "model.safetensors").stat().st_mode) & 0o044


def test_verify_of_a_changed_model_says_why_it_may_differ_and_prints_each_failure_once(saved_source, tmp_path):
    source, out = saved_source(), tmp_path / "long"
    assert run("convert", source, out, "--max-length", 64, "--attention-window", 16, "--no-smoke").exit_code == 0
    model = transformers.AutoModelForMaskedLM.from_pretrained(out)
    with torch.no_grad():
        model.lm_head.dense.weight.mul_(1.5)  # as training would
    model.save_pretrained(out)
    result = run("verify", source, out, "--no-smoke")
    assert result.exit_code == 1 and "expected if it was trained or fine-tuned after conversion" in result.output
    failed = [line for line in result.output.splitlines() if "✗" in line]
    assert failed and len(failed) == len(set(failed))


def test_a_conversion_note_is_printed_once(saved_source, tmp_path):
    result = run(
        "convert",
        saved_source("roberta", "base"),
        tmp_path / "nys",
        "--to",
        "nystromformer",
        "--max-length",
        64,
        "--num-landmarks",
        8,
        "--no-smoke",
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("has no place for pooler") == 1


def test_bigbird_verification_does_not_repeat_transformers_attention_warning(bpe_tokenizer, capfd):
    source = make_source("roberta", "masked_lm")
    converted = convert(source, bpe_tokenizer, to="bigbird", max_length=64, block_size=4, num_random_blocks=1).model
    transformers.logging.set_verbosity_warning()
    try:
        capfd.readouterr()
        assert verify(source, converted, bpe_tokenizer, smoke=False).passed
    finally:
        transformers.logging.set_verbosity_error()
    assert "Changing attention type" not in capfd.readouterr().err


def test_help_shows_flags_as_flags_required_options_and_no_cut_off_text():
    top = runner.invoke(app, ["--help"], terminal_width=80).output
    assert "…" not in top and "..." not in top.split("Commands:")[1]
    convert_help = runner.invoke(app, ["convert", "--help"], terminal_width=100).output
    assert "convert [OPTIONS] SOURCE OUTPUT" in convert_help
    assert "--force  " in convert_help and "--force BOOLEAN" not in convert_help
    assert "[default: (" not in convert_help
    resize_help = runner.invoke(app, ["resize", "--help"], terminal_width=100).output
    assert "[required]" in resize_help


def test_reading_local_documents_shows_no_download_or_generation_bars(documents, capfd):
    from roberta2longformer.train.documents import read_documents

    capfd.readouterr()
    assert len(read_documents([str(documents)])) == 3
    printed = capfd.readouterr()
    assert "Downloading" not in printed.err + printed.out and "Generating" not in printed.err + printed.out
