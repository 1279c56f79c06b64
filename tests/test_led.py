"""RoBERTa-family or Longformer → LED: encoder exactness, decoder warm start, generate(), errors."""

from __future__ import annotations

import pytest
import torch
import transformers

from helpers import FAMILY_CLASSES, make_source
from roberta2longformer import ConversionError, convert, save_conversion, verify

WINDOW = 64  # exact up to 33 tokens ≥ the 32 learned source positions
OPTIONS = {"max_length": 128, "attention_window": WINDOW, "decoder_max_length": 48}


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
@pytest.mark.parametrize("head", ["base", "masked_lm"])
def test_encoder_reproduces_every_family(family, head, tokenizer_for):
    source = make_source(family, head, layer_norm_eps=1e-5)
    conversion = convert(source, tokenizer_for(family), to="led", **OPTIONS)
    assert type(conversion.model) is transformers.LEDForConditionalGeneration
    report = verify(source, conversion.model, tokenizer_for(family))
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 32
    assert {c.output for c in report.checks if c.case != "weights"} == {"encoder last_hidden_state"}
    assert report.smoke["finite"] and report.smoke["length"] == 128
    assert report.smoke["generated_tokens"] > 1


def test_longformer_source_keeps_its_global_projections(bpe_tokenizer):
    roberta = make_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    longformer = convert(roberta, bpe_tokenizer, max_length=64, attention_window=WINDOW).model
    with torch.no_grad():  # a trained Longformer's global projections differ from its local ones
        for layer in longformer.longformer.encoder.layer:
            layer.attention.self.query_global.weight.add_(
                0.3 * torch.randn_like(layer.attention.self.query_global.weight)
            )
    led = convert(longformer, bpe_tokenizer, to="led", **OPTIONS).model
    for i, layer in enumerate(led.led.encoder.layers):
        source = longformer.longformer.encoder.layer[i].attention.self
        torch.testing.assert_close(layer.self_attn.longformer_self_attn.query_global.weight, source.query_global.weight)
        torch.testing.assert_close(layer.self_attn.longformer_self_attn.query.weight, source.query.weight)
    report = verify(longformer, led, bpe_tokenizer)  # the global CLS uses the changed projections on both sides
    assert report.passed and report.max_abs_diff <= 1e-4


def test_decoder_warm_start_positions_and_cross_attention(bpe_tokenizer):
    source = make_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    conversion = convert(source, bpe_tokenizer, to="led", cross_attention_init="self", **OPTIONS)
    model, config = conversion.model, conversion.model.config
    assert (config.d_model, config.encoder_layers, config.decoder_layers) == (32, 2, 2)
    assert (config.max_encoder_position_embeddings, config.max_decoder_position_embeddings) == (128, 48)
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id, config.decoder_start_token_id) == (
        0,
        2,
        1,
        0,
    )
    embeddings = source.roberta.embeddings
    folded = embeddings.position_embeddings.weight[2:] + embeddings.token_type_embeddings.weight[0]
    torch.testing.assert_close(model.led.encoder.embed_positions.weight[:32], folded)
    torch.testing.assert_close(model.led.decoder.embed_positions.weight[:32], folded)
    torch.testing.assert_close(model.led.decoder.embed_positions.weight[32:48], folded[:16])  # tiled
    for i, layer in enumerate(model.led.decoder.layers):
        src = source.roberta.encoder.layer[i]
        torch.testing.assert_close(layer.self_attn.q_proj.weight, src.attention.self.query.weight)
        torch.testing.assert_close(layer.fc2.weight, src.output.dense.weight)
        torch.testing.assert_close(layer.encoder_attn.q_proj.weight, src.attention.self.query.weight)
        torch.testing.assert_close(layer.encoder_attn_layer_norm.weight, src.attention.output.LayerNorm.weight)
    torch.testing.assert_close(model.final_logits_bias[0], source.lm_head.bias)
    assert model.lm_head.weight.data_ptr() == model.led.shared.weight.data_ptr()
    assert any("transform (dense + gelu + layer norm) has no place" in note for note in conversion.notes)
    random = convert(source, bpe_tokenizer, to="led", **OPTIONS).model
    cross = random.led.decoder.layers[0].encoder_attn
    assert not torch.equal(cross.q_proj.weight, model.led.decoder.layers[0].encoder_attn.q_proj.weight)
    assert cross.q_proj.bias.abs().sum() == 0 and 0.01 < cross.q_proj.weight.std() < 0.5


def test_round_trip_generate_and_teacher_forced_loss(tmp_path, bpe_tokenizer):
    source = make_source("roberta", "base", layer_norm_eps=1e-5)
    conversion = convert(source, bpe_tokenizer, to="led", **OPTIONS)
    report = verify(source, conversion.model, bpe_tokenizer)
    save_conversion(conversion, report, tmp_path / "led")
    assert "the encoder's hidden states" in (tmp_path / "led" / "README.md").read_text()
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "led").eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "led")
    assert type(model) is transformers.LEDForConditionalGeneration and tokenizer.model_max_length == 128
    batch = tokenizer(["a long document about the library " * 12], truncation=True, return_tensors="pt")
    assert 64 < batch["input_ids"].shape[1] <= 128
    labels = tokenizer(["the library"], return_tensors="pt")["input_ids"]
    assert torch.isfinite(model(**batch, labels=labels).loss)
    generated = model.generate(**batch, max_new_tokens=5, do_sample=False)
    assert (
        generated.shape[0] == 1
        and 2 <= generated.shape[1] <= 6
        and generated[0, 0] == model.config.decoder_start_token_id
    )
    ids = torch.randint(5, 300, (1, 20))
    with torch.inference_mode():
        torch.testing.assert_close(
            model.get_encoder()(ids).last_hidden_state, source(ids).last_hidden_state, atol=1e-4, rtol=0
        )


def test_a_source_with_another_layer_norm_epsilon_is_refused(wordpiece_tokenizer):
    # LED's layer norms have eps fixed at 1e-5; BERT's default is 1e-12.
    with pytest.raises(ConversionError, match="fixed eps of 1e-05 but the source's is 1e-12"):
        convert(make_source("bert", "base"), wordpiece_tokenizer, to="led", **OPTIONS)


@pytest.mark.parametrize(
    "options, message",
    [
        ({**OPTIONS, "decoder_max_length": 0}, "--decoder-max-length must be a positive whole number"),
        ({**OPTIONS, "max_length": 100}, "must be a multiple of --attention-window"),
        ({**OPTIONS, "cross_attention_init": "zeros"}, "Unknown --cross-attention-init"),
        ({**OPTIONS, "attention_window": [64, 64, 64]}, "has 3 values but the source has 2 layers"),
        ({**OPTIONS, "block_size": 4}, "--block-size does not apply to --to led"),
    ],
)
def test_bad_options_are_refused(options, message, bpe_tokenizer):
    with pytest.raises(ConversionError, match=message):
        convert(make_source("roberta", "base", layer_norm_eps=1e-5), bpe_tokenizer, to="led", **options)


def test_unsupported_sources_are_refused(wordpiece_tokenizer, bpe_tokenizer):
    with pytest.raises(ConversionError, match="LEDForSequenceClassification is not one this tool makes"):
        convert(make_source("roberta", "sequence_classification"), bpe_tokenizer, to="led", **OPTIONS)
    with pytest.raises(ConversionError, match="needs start and end token ids"):
        convert(make_source("bert", "base", layer_norm_eps=1e-5), to="led", **OPTIONS)  # BERT configs have no bos/eos
    longformer = convert(make_source("roberta", "base"), bpe_tokenizer, max_length=64, attention_window=WINDOW).model
    with pytest.raises(ConversionError, match="A Longformer source converts to led, not bigbird; to change"):
        convert(longformer, to="bigbird", max_length=128, block_size=4, num_random_blocks=1)


def test_public_call_and_cli_convert_to_led(tmp_path, bpe_tokenizer):
    from click.testing import CliRunner

    from roberta2longformer import convert_roberta_to_led
    from roberta2longformer.cli import app

    source = make_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    model, tokenizer = convert_roberta_to_led(source, bpe_tokenizer, 256, 64, attention_window=WINDOW)
    assert model.config.max_encoder_position_embeddings == 256 and model.config.max_decoder_position_embeddings == 64
    assert tokenizer.model_max_length == 256
    source.save_pretrained(tmp_path / "source")
    bpe_tokenizer.save_pretrained(tmp_path / "source")
    runner = CliRunner()
    led = (
        f"convert {tmp_path / 'source'} {{}} --to led --max-length 128 --attention-window 64 --decoder-max-length {{}}"
    )
    result = runner.invoke(app, [*led.format(tmp_path / "led", 48).split(), "--cross-attention-init", "self"])
    assert result.exit_code == 0, result.output
    assert "encoder last_hidden_state" in result.output and "generated_tokens=5" in result.output
    result = runner.invoke(app, ["verify", str(tmp_path / "source"), str(tmp_path / "led")])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(app, led.format(tmp_path / "bad", 0).split())
    assert bad.exit_code == 2 and "--decoder-max-length must be a positive whole number" in bad.output
    assert not (tmp_path / "bad").exists()
