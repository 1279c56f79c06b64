"""BART → LED: encoder and decoder carried over, the whole model (encoder hidden states, decoder logits
under teacher forcing) exact on inputs that fit one window, streaming and in memory; generate() on a long
input; resize on the result; what LED cannot reproduce refused in one sentence."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from roberta2longformer import ConversionError, convert, verify
from roberta2longformer.cli import app
from roberta2longformer.core.families import family_for

OPTIONS = {"max_length": 128, "attention_window": 64, "decoder_max_length": 32}


def tiny_bart(head: str = "ForConditionalGeneration", **overrides):
    """Odd sizes (2 encoder, 3 decoder layers, heads 4 and 2), perturbed layer norms, 32 positions."""
    fields = dict(
        vocab_size=320, d_model=32, encoder_layers=2, decoder_layers=3, encoder_attention_heads=4,
        decoder_attention_heads=2, encoder_ffn_dim=48, decoder_ffn_dim=40, max_position_embeddings=32,
        pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, init_std=0.2,
    )  # fmt: skip
    fields.update(overrides)
    torch.manual_seed(0)
    model = getattr(transformers, "Bart" + head)(transformers.BartConfig(**fields)).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "layer_norm" in name or "layernorm" in name:
                parameter.add_(0.3 * torch.randn_like(parameter))
    return model


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize(
    "head, led",
    [("ForConditionalGeneration", transformers.LEDForConditionalGeneration), ("Model", transformers.LEDModel)],
)
def test_the_whole_model_is_exact_in_one_window(head, led, bpe_tokenizer):
    source = tiny_bart(head)
    conversion = convert(source, bpe_tokenizer, to="led", **OPTIONS)
    assert type(conversion.model) is led
    report = verify(source, conversion.model, bpe_tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 32
    outputs = {c.output for c in report.checks if c.case != "weights"}
    assert {"encoder last_hidden_state", "decoder last hidden state (teacher forcing)"} <= outputs
    assert ("logits (teacher forcing)" in outputs) == (head == "ForConditionalGeneration")
    config = conversion.model.config
    assert (config.encoder_layers, config.decoder_layers, config.decoder_ffn_dim) == (2, 3, 40)
    assert (config.max_encoder_position_embeddings, config.max_decoder_position_embeddings) == (128, 32)
    assert not any("cross-attention starts" in note for note in conversion.notes)  # BART's own is carried


def test_positions_follow_barts_offset_rows(bpe_tokenizer):
    source = tiny_bart()
    led = convert(source, bpe_tokenizer, to="led", **OPTIONS).model
    bart_rows = source.model.encoder.embed_positions.weight  # 2 offset rows, then positions 0…31
    torch.testing.assert_close(led.led.encoder.embed_positions.weight[:32], bart_rows[2:], rtol=0, atol=0)
    torch.testing.assert_close(led.led.encoder.embed_positions.weight[32:64], bart_rows[2:], rtol=0, atol=0)  # tile
    torch.testing.assert_close(led.led.decoder.embed_positions.weight, source.model.decoder.embed_positions.weight[2:])


def test_generate_runs_on_a_long_input_and_resize_works(bpe_tokenizer, tmp_path):
    source = tiny_bart()
    source.save_pretrained(tmp_path / "bart")
    bpe_tokenizer.save_pretrained(tmp_path / "bart")
    result = run("convert", tmp_path / "bart", tmp_path / "led", "--to", "led", "--max-length", "128",
                 "--attention-window", "64", "--decoder-max-length", "32")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "by streaming" in result.output and "logits (teacher forcing)" in result.output
    led = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "led")
    ids = torch.randint(3, 320, (1, 120))
    generated = led.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
    assert generated.shape[1] > 1
    assert run("verify", tmp_path / "bart", tmp_path / "led").exit_code == 0
    resized = run("resize", tmp_path / "led", tmp_path / "led-256", "--max-length", "256")
    assert resized.exit_code == 0, resized.output
    assert json.loads((tmp_path / "led-256" / "config.json").read_text())["max_encoder_position_embeddings"] == 256


def test_the_declared_layout_is_what_transformers_saves():
    from roberta2longformer.compat import saved_state

    for head, name in (("ForConditionalGeneration", "conditional_generation"), ("Model", "seq2seq_base")):
        model = tiny_bart(head)
        family = family_for(model.config)
        saved = saved_state(model)
        canonical = {key: tuple(value.shape) for key, value in family.to_canonical(saved, name).items()}
        assert canonical == family.canonical_layout(model.config, name)


@pytest.mark.parametrize(
    "change, extra, phrase",
    [
        ({"scale_embedding": True}, [], "scale_embedding"),
        ({}, ["--to", "longformer"], "LED is BART with Longformer self-attention"),
        ({}, ["--to", "led", "--decoder-max-length", "64"], "beyond the BART decoder's 32 positions"),
        ({"vocab_size": 200}, [], "tokenizer"),
    ],
    ids=["scaled embeddings", "encoder target", "decoder too long", "vocabulary"],
)
def test_what_led_cannot_reproduce_is_refused(change, extra, phrase, bpe_tokenizer, tmp_path):
    tiny_bart(**change).save_pretrained(tmp_path / "bart")
    bpe_tokenizer.save_pretrained(tmp_path / "bart")
    led = [] if "--to" in extra else ["--to", "led", *([] if extra else ["--decoder-max-length", "32"])]
    result = run("convert", tmp_path / "bart", tmp_path / "out", *led, "--max-length", "128", "--attention-window", "64",
                 *extra)  # fmt: skip
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_an_mbart_is_refused_naming_the_supported_families(tmp_path):
    config = transformers.MBartConfig(vocab_size=64, d_model=16, encoder_layers=1, decoder_layers=1,
                                      encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=16,
                                      decoder_ffn_dim=16, max_position_embeddings=32)  # fmt: skip
    with pytest.raises(ConversionError, match="supported families are .*BART"):
        convert(transformers.MBartForConditionalGeneration(config), None, to="led", **OPTIONS)


def test_the_decoder_keeps_the_barts_own_length_by_default(bpe_tokenizer, tmp_path):
    """A BART whose decoder has 32 positions converts with the default options (issue #34: refused before,
    "decoder_max_length 1024 is beyond the BART decoder's 64 positions")."""
    tiny_bart().save_pretrained(tmp_path / "bart")
    bpe_tokenizer.save_pretrained(tmp_path / "bart")
    result = run("convert", tmp_path / "bart", tmp_path / "out", "--to", "led", "--max-length", "128",
                 "--attention-window", "64", "--no-smoke")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert transformers.AutoConfig.from_pretrained(tmp_path / "out").max_decoder_position_embeddings == 32
