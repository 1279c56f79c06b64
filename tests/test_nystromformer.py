"""RoBERTa-family → Nyströmformer: the original API, exactness, zero convolution, landmarks, errors."""

from __future__ import annotations

import importlib

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import FAMILY_CLASSES, make_source
from roberta2longformer import ConversionError, convert, save_conversion, verify
from roberta2longformer.cli import app

SUPPORTED = ["base", "masked_lm", "token_classification", "question_answering"]


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
@pytest.mark.parametrize("head", SUPPORTED)
def test_every_family_and_supported_head_is_exact(family, head, tokenizer_for):
    source = make_source(family, head)
    conversion = convert(source, tokenizer_for(family), to="nystromformer", max_length=128, num_landmarks=16)
    assert type(conversion.model).__name__.startswith("Nystromformer")
    report = verify(source, conversion.model, tokenizer_for(family))
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 32
    assert report.smoke["length"] == 128 and report.smoke["finite"]
    assert [a["length"] for a in report.approximation] == [32]


def test_original_module_names_and_call(bpe_tokenizer):
    umlaut = importlib.import_module("roberta2nyströmformer")
    ascii_ = importlib.import_module("roberta2nystromformer")
    assert umlaut.convert_roberta_to_nystromformer is ascii_.convert_roberta_to_nystromformer
    source = make_source("roberta", "base")
    model, tokenizer = umlaut.convert_roberta_to_nystromformer(
        roberta_model=source, roberta_tokenizer=bpe_tokenizer, nystromformer_max_length=8192
    )
    assert isinstance(model, transformers.NystromformerModel)
    assert model.config.num_landmarks == 64 and model.config.segment_means_seq_len == 8192
    assert tokenizer.model_max_length == 8192


def test_positions_and_convolution_start_equivalent(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    model = convert(source, bpe_tokenizer, to="nystromformer", max_length=64, num_landmarks=16).model
    table = model.nystromformer.embeddings.position_embeddings.weight
    assert table.shape[0] == 64 + 2  # transformers adds the 2 rows; token i reads row i + 2
    torch.testing.assert_close(table[:34], source.roberta.embeddings.position_embeddings.weight)
    for layer in model.nystromformer.encoder.layer:
        assert layer.attention.self.conv.weight.abs().sum() == 0
    assert (
        model.cls.predictions.decoder.weight.data_ptr()
        == model.nystromformer.embeddings.word_embeddings.weight.data_ptr()
    )


def test_landmark_regime_is_used_and_its_error_reported(bpe_tokenizer):
    source = make_source("roberta", "base", max_position_embeddings=130)
    conversion = convert(source, bpe_tokenizer, to="nystromformer", max_length=256, num_landmarks=16)
    report = verify(source, conversion.model, bpe_tokenizer)
    assert [a["length"] for a in report.approximation] == [32, 64, 128]
    assert all(0.5 < a["mean_cosine"] < 1.0 and a["max_abs_diff"] > 1e-3 for a in report.approximation)
    ids = torch.randint(5, 300, (1, 256))
    assert torch.isfinite(conversion.model(ids).last_hidden_state).all()


def test_pooler_drop_is_said_and_card_warns_about_padding(tmp_path, bpe_tokenizer):
    source = make_source("roberta", "base")
    conversion = convert(source, bpe_tokenizer, to="nystromformer", max_length=64, num_landmarks=16)
    assert any("no place for pooler weights" in note for note in conversion.notes)
    save_conversion(conversion, verify(source, conversion.model, bpe_tokenizer), tmp_path / "ny")
    card = (tmp_path / "ny" / "README.md").read_text()
    assert "pad every input to 64 tokens" in card and "mean cosine" in card
    assert type(transformers.AutoModel.from_pretrained(tmp_path / "ny")).__name__ == "NystromformerModel"


@pytest.mark.parametrize("head", ["sequence_classification", "multiple_choice"])
def test_heads_without_an_equivalent_are_refused(head):
    with pytest.raises(ConversionError, match="would not compute what the source's did"):
        convert(make_source("roberta", head), to="nystromformer", max_length=64, num_landmarks=16)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_length": 100, "num_landmarks": 64}, "must be a multiple of --num-landmarks"),
        ({"max_length": 128, "num_landmarks": 0}, "--num-landmarks must be a positive whole number"),
        ({"max_length": 128, "segment_means_seq_len": 256}, "no larger than --max-length"),
        ({"max_length": 128, "conv_kernel_size": 4}, "--conv-kernel-size must be a positive odd number"),
        ({"max_length": 128, "attention_window": 64}, "--attention-window does not apply to --to nystromformer"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConversionError, match=message):
        convert(make_source("roberta", "base"), to="nystromformer", **options)


def test_cli_convert_and_verify_nystromformer(tmp_path, bpe_tokenizer):
    source_dir = tmp_path / "source"
    make_source("roberta", "masked_lm").save_pretrained(source_dir)
    bpe_tokenizer.save_pretrained(source_dir)
    runner = CliRunner()
    out = tmp_path / "ny"
    args = [
        "convert",
        str(source_dir),
        str(out),
        "--to",
        "nystromformer",
        "--max-length",
        "96",
        "--num-landmarks",
        "16",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "approximation at 32 tokens (16 landmarks)" in result.output
    result = runner.invoke(app, ["verify", str(source_dir), str(out)])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        app, ["convert", str(source_dir), str(tmp_path / "bad"), "--to", "nystromformer", "--max-length", "100"]
    )
    assert bad.exit_code == 2 and "must be a multiple of --num-landmarks (64)" in bad.output
    assert not (tmp_path / "bad").exists()
