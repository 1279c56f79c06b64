"""RoBERTa-family → BigBird: exactness where it uses full attention, block-sparse at length, errors."""

from __future__ import annotations

import copy

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import FAMILY_CLASSES, HEAD_SUFFIXES, make_source
from roberta2longformer import (
    ConversionError,
    ToleranceError,
    convert,
    convert_roberta_to_bigbird,
    save_conversion,
    verify,
)
from roberta2longformer.cli import app
from roberta2longformer.targets import prepare_attention

SUPPORTED = ["base", "masked_lm", "token_classification", "multiple_choice"]
# Full attention up to (5 + 2·1)·4 = 28 tokens; block-sparse beyond, within the source's 32 positions.
SMALL_BLOCKS = {"block_size": 4, "num_random_blocks": 1}


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
@pytest.mark.parametrize("head", SUPPORTED)
def test_every_family_and_supported_head_is_exact(family, head, tokenizer_for):
    source = make_source(family, head)
    conversion = convert(source, tokenizer_for(family), to="bigbird", max_length=128, **SMALL_BLOCKS)
    assert type(conversion.model) is getattr(transformers, "BigBird" + HEAD_SUFFIXES[head])
    report = verify(source, conversion.model, tokenizer_for(family))
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 28
    assert any("padded" in c.case for c in report.checks) and any("text" in c.case for c in report.checks)
    assert report.smoke["length"] == 128 and report.smoke["finite"]
    # Block-sparse on the one whole-block length past the fallback the source can read: an approximation.
    assert [(a["length"], a["regime"]) for a in report.approximation] == [(32, "block-sparse, blocks of 4, 1 random")]
    assert 0.5 < report.approximation[0]["mean_cosine"] < 1.0


def test_original_style_call_positions_config_and_ties(bpe_tokenizer):
    source = make_source("roberta", "masked_lm", hidden_act="gelu", layer_norm_eps=1e-7, type_vocab_size=3)
    model, tokenizer = convert_roberta_to_bigbird(source, bpe_tokenizer, 256, **SMALL_BLOCKS)
    config = model.config
    assert (config.max_position_embeddings, config.block_size, config.num_random_blocks) == (256, 4, 1)
    assert config.attention_type == "block_sparse" and config.rescale_embeddings is False and config.use_bias
    assert (config.layer_norm_eps, config.type_vocab_size, config.pad_token_id, config.sep_token_id) == (1e-7, 3, 1, 2)
    assert tokenizer.model_max_length == 256
    # BigBird numbers tokens from 0: RoBERTa's learned rows (from row 2) move down by two, then repeat.
    table = model.bert.embeddings.position_embeddings.weight
    learned = source.roberta.embeddings.position_embeddings.weight[2:]
    torch.testing.assert_close(table[:32], learned)
    torch.testing.assert_close(table[32:64], learned)
    assert model.cls.predictions.decoder.weight.data_ptr() == model.bert.embeddings.word_embeddings.weight.data_ptr()
    for i, layer in enumerate(model.bert.encoder.layer):
        torch.testing.assert_close(
            layer.attention.self.query.weight, source.roberta.encoder.layer[i].attention.self.query.weight
        )


def test_short_forward_does_not_leave_the_model_in_full_attention(bpe_tokenizer):
    source = make_source("roberta", "base")
    model = convert(source, bpe_tokenizer, to="bigbird", max_length=128, **SMALL_BLOCKS).model
    verify(source, model, bpe_tokenizer, smoke=False)  # short inputs switch transformers' BigBird to full
    assert model.attention_type == "block_sparse"
    assert all(type(layer.attention.self).__name__ == "BigBirdBlockSparseAttention" for layer in model.encoder.layer)
    torch.testing.assert_close(model.pooler.weight, source.pooler.dense.weight)


def test_models_our_commands_run_choose_their_attention_for_each_input(bpe_tokenizer):
    # transformers' BigBird keeps full attention after one short input (a query, a last short batch): every later
    # long document paid quadratic attention, and retrieval measured a full-attention model, not BigBird.
    model = convert(make_source("roberta", "base"), bpe_tokenizer, to="bigbird", max_length=128, **SMALL_BLOCKS).model
    fresh = copy.deepcopy(model)
    used = []
    short, long = torch.randint(5, 300, (2, 16)), torch.randint(5, 300, (2, 96))

    def attention_used(module, args):
        used.append(type(module.self).__name__)

    with torch.inference_mode():
        expected = fresh(long).last_hidden_state
        fresh.encoder.layer[0].attention.register_forward_pre_hook(attention_used)
        fresh(short), fresh(long)
        assert used == ["BigBirdSelfAttention", "BigBirdSelfAttention"]  # what plain transformers does
        prepare_attention(model, fast_attention=True)
        prepare_attention(model, fast_attention=True)  # idempotent: one hook
        model.encoder.layer[0].attention.register_forward_pre_hook(attention_used)
        used.clear()
        model(short), model(input_ids=long), model(short)
        assert used == ["BigBirdSelfAttention", "BigBirdBlockSparseAttention", "BigBirdSelfAttention"]
        torch.testing.assert_close(model(long).last_hidden_state, expected)
    assert model.config.attention_type == "block_sparse"


def test_verification_fails_loudly_when_a_weight_is_wrong(bpe_tokenizer):
    source = make_source("roberta", "token_classification")
    model = convert(source, bpe_tokenizer, to="bigbird", max_length=64, **SMALL_BLOCKS).model
    with torch.no_grad():
        model.bert.embeddings.position_embeddings.weight[3] += torch.linspace(-1, 1, 32)
    with pytest.raises(ToleranceError, match="differs from its source"):
        verify(source, model, bpe_tokenizer, smoke=False)


def test_masked_lm_gets_a_noted_pooler_and_round_trips(tmp_path, bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    conversion = convert(source, bpe_tokenizer, to="bigbird", max_length=64, **SMALL_BLOCKS)
    assert any("pooler" in note and "does not read it" in note for note in conversion.notes)
    report = verify(source, conversion.model, bpe_tokenizer)
    save_conversion(conversion, report, tmp_path / "bb")
    card = (tmp_path / "bb" / "README.md").read_text()
    assert "set_attention_type('block_sparse')" in card and "block-sparse, blocks of 4" in card
    loaded = transformers.AutoModelForMaskedLM.from_pretrained(tmp_path / "bb").eval()
    assert type(loaded) is transformers.BigBirdForMaskedLM
    ids = torch.randint(5, 300, (1, 64))
    with torch.inference_mode():
        torch.testing.assert_close(loaded(ids).logits, conversion.model(ids).logits)
    assert verify(source, loaded, bpe_tokenizer, smoke=False).passed


@pytest.mark.parametrize("head", ["sequence_classification", "question_answering"])
def test_heads_without_an_equivalent_are_refused(head):
    with pytest.raises(ConversionError, match="would not compute what the source's did"):
        convert(make_source("roberta", head), to="bigbird", max_length=64, **SMALL_BLOCKS)


def test_masked_lm_with_another_activation_is_refused():
    # RoBERTa's LM head always applies gelu; BigBird's applies hidden_act.
    with pytest.raises(ConversionError, match="masked-LM head applies gelu but BigBird's applies relu"):
        convert(make_source("roberta", "masked_lm", hidden_act="relu"), to="bigbird", max_length=64, **SMALL_BLOCKS)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"max_length": 100, "block_size": 8}, "must be a multiple of --block-size"),
        ({"max_length": 128, "block_size": 0}, "--block-size must be a positive whole number"),
        ({"max_length": 128, "block_size": 4, "num_random_blocks": 0}, "--num-random-blocks must be a positive whole"),
        ({"max_length": 512, "block_size": 64}, "would never use block-sparse attention"),
        ({"max_length": 128, "block_size": 4, "position_init": "zeros"}, "Unknown --position-init"),
        ({"max_length": 128, "attention_window": 64}, "--attention-window does not apply to --to bigbird"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ConversionError, match=message):
        convert(make_source("roberta", "base"), to="bigbird", **options)


def test_cli_convert_and_verify_bigbird(tmp_path, wordpiece_tokenizer):
    source_dir = tmp_path / "source"
    make_source("bert", "masked_lm").save_pretrained(source_dir)
    wordpiece_tokenizer.save_pretrained(source_dir)
    runner = CliRunner()
    out = tmp_path / "bb"
    args = [
        "convert",
        str(source_dir),
        str(out),
        "--to",
        "bigbird",
        "--max-length",
        "96",
        "--block-size",
        "4",
        "--num-random-blocks",
        "1",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "approximation at 32 tokens (block-sparse" in result.output
    assert transformers.AutoConfig.from_pretrained(out).model_type == "big_bird"
    result = runner.invoke(app, ["verify", str(source_dir), str(out)])
    assert result.exit_code == 0, result.output
    bad = runner.invoke(
        app, ["convert", str(source_dir), str(tmp_path / "bad"), "--to", "bigbird", "--max-length", "100"]
    )
    assert bad.exit_code == 2 and "must be a multiple of --block-size" in bad.output
    assert not (tmp_path / "bad").exists()
