"""Resizing long models: grow and shrink every target and head, exact on inputs both read, errors."""

from __future__ import annotations

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import HEAD_SUFFIXES, make_source
from roberta2longformer import (
    ConversionError,
    ToleranceError,
    convert,
    resize,
    resize_longformer,
    save_conversion,
    verify,
)
from roberta2longformer.cli import app

TARGETS = {
    "longformer": ({"attention_window": 16}, list(HEAD_SUFFIXES)),
    "bigbird": (
        {"block_size": 4, "num_random_blocks": 1},
        ["base", "masked_lm", "token_classification", "multiple_choice"],
    ),
    "nystromformer": ({"num_landmarks": 16}, ["base", "masked_lm", "token_classification", "question_answering"]),
    "led": ({"attention_window": 16, "decoder_max_length": 32}, ["base"]),
}
CASES = [(to, head) for to, (_, heads) in TARGETS.items() for head in heads]


def _long_model(to: str, head: str, tokenizer):
    source = make_source("roberta", head, layer_norm_eps=1e-5)
    return convert(source, tokenizer, to=to, max_length=64, **TARGETS[to][0])


@pytest.mark.parametrize("to, head", CASES)
@pytest.mark.parametrize("new_length", [128, 48])
def test_resize_up_and_down_is_exact_where_both_read(to, head, new_length, bpe_tokenizer):
    original = _long_model(to, head, bpe_tokenizer)
    resized = resize(original.model, original.tokenizer, new_length)
    assert type(resized.model) is type(original.model)
    assert resized.target.max_length(resized.model.config) == new_length
    assert resized.tokenizer.model_max_length == new_length
    report = verify(original.model, resized.model, original.tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-5 and report.exact_length == min(64, new_length)
    assert report.smoke["finite"] and report.smoke["length"] == new_length


def test_rows_are_kept_and_new_rows_tiled(tmp_path, bpe_tokenizer):
    original = _long_model("longformer", "masked_lm", bpe_tokenizer).model
    model, _ = resize_longformer(original, None, 160)
    model.save_pretrained(tmp_path / "resized")
    loaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "resized").eval()
    ids = torch.randint(5, 300, (2, 150))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    old = original.longformer.embeddings.position_embeddings.weight
    new = model.longformer.embeddings.position_embeddings.weight
    assert new.shape[0] == 160 + 2 and model.config.max_position_embeddings == 162
    torch.testing.assert_close(new[:66], old)  # the offset rows and all 64 learned rows
    torch.testing.assert_close(new[66:130], old[2:])  # then the learned rows again
    assert model.lm_head.decoder.weight.data_ptr() == model.longformer.embeddings.word_embeddings.weight.data_ptr()


def test_nystromformer_reading_whole_inputs_keeps_doing_so(bpe_tokenizer):
    original = _long_model("nystromformer", "base", bpe_tokenizer).model
    assert original.config.segment_means_seq_len == 64
    assert resize(original, None, 128).model.config.segment_means_seq_len == 128


def test_resize_can_fail_verification(bpe_tokenizer):
    original = _long_model("bigbird", "base", bpe_tokenizer).model
    resized = resize(original, None, 128).model
    with torch.no_grad():
        resized.embeddings.position_embeddings.weight[5] += torch.linspace(-1, 1, 32)
    with pytest.raises(ToleranceError):
        verify(original, resized, smoke=False)


@pytest.mark.parametrize(
    "to, length, message",
    [
        ("bigbird", 102, "must be a multiple of --block-size"),
        ("bigbird", 24, "would never use block-sparse attention"),
        ("nystromformer", 40, "must be a multiple of --num-landmarks"),
        ("led", 40, "must be a multiple of --attention-window"),
        ("longformer", 0, "--max-length must be a positive whole number"),
    ],
)
def test_lengths_the_model_cannot_represent_are_refused(to, length, message, bpe_tokenizer):
    original = _long_model(to, TARGETS[to][1][0], bpe_tokenizer).model
    with pytest.raises(ConversionError, match=message):
        resize(original, None, length)


def test_a_source_model_is_not_resized():
    with pytest.raises(ConversionError, match="not a 'roberta' one; convert it first"):
        resize(make_source("roberta", "base"), None, 128)


def test_cli_resize_round_trip(tmp_path, bpe_tokenizer):
    original = _long_model("led", "base", bpe_tokenizer)
    save_conversion(original, None, tmp_path / "led-64")
    runner = CliRunner()
    result = runner.invoke(app, ["resize", str(tmp_path / "led-64"), str(tmp_path / "led-128"), "--max-length", "128"])
    assert result.exit_code == 0, result.output
    assert "Resized LEDForConditionalGeneration from 64 to 128 tokens" in result.output
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "led-128")
    assert model.config.max_encoder_position_embeddings == 128 and model.config.max_decoder_position_embeddings == 32
    assert "Resized from 64 to 128 tokens" in (tmp_path / "led-128" / "README.md").read_text()
    bad = runner.invoke(app, ["resize", str(tmp_path / "led-64"), str(tmp_path / "bad"), "--max-length", "40"])
    assert bad.exit_code == 2 and "must be a multiple of --attention-window (16)" in bad.output
    assert not (tmp_path / "bad").exists()
