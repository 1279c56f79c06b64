"""RoBERTa-family → Longformer: exactness, weight and config carry-over, round trips."""

from __future__ import annotations

import pytest
import torch
import transformers

from helpers import FAMILY_CLASSES, HEAD_SUFFIXES, make_source
from roberta2longformer import ConversionError, ToleranceError, convert, convert_roberta_to_longformer, verify
from roberta2longformer.core.config_map import CARRIED_FIELDS

HEADS = list(HEAD_SUFFIXES)
ATTENTION_WINDOW = 64  # exactness limit 33 tokens ≥ the 32 learned source positions


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
@pytest.mark.parametrize("head", HEADS)
def test_every_family_and_head_converts_exactly(family, head, tokenizer_for):
    source = make_source(family, head)
    tokenizer = tokenizer_for(family)
    conversion = convert(source, tokenizer, max_length=256, attention_window=ATTENTION_WINDOW)
    expected_class = getattr(transformers, "Longformer" + HEAD_SUFFIXES[head])
    assert type(conversion.model) is expected_class
    report = verify(source, conversion.model, tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-4
    assert report.exact_length == 32
    assert {c.case for c in report.checks} >= {c.case for c in report.checks if "padded" in c.case}
    assert any("text" in c.case for c in report.checks)
    head_positions = {"lm_head_positions": 64} if head == "masked_lm" else {}  # the vocabulary projection's share
    assert report.smoke == {"length": 256, "seconds": report.smoke["seconds"], "finite": True, **head_positions}


@pytest.mark.parametrize("position_init", ["tile", "interpolate", "random"])
def test_each_position_init_is_exact_on_short_inputs(position_init, bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    model, _ = convert_roberta_to_longformer(
        source, bpe_tokenizer, 200, attention_window=ATTENTION_WINDOW, position_init=position_init
    )
    report = verify(source, model, bpe_tokenizer, smoke=False)
    assert report.max_abs_diff <= 1e-4


def test_verification_fails_loudly_when_a_weight_is_wrong(bpe_tokenizer):
    source = make_source("roberta", "sequence_classification")
    conversion = convert(source, bpe_tokenizer, max_length=64, attention_window=ATTENTION_WINDOW)
    with torch.no_grad():
        # A position row read by token 3; a non-uniform change (LayerNorm would erase a constant one).
        conversion.model.longformer.embeddings.position_embeddings.weight[5] += torch.linspace(-1, 1, 32)
    with pytest.raises(ToleranceError, match="differs from its source"):
        verify(source, conversion.model, bpe_tokenizer, smoke=False)


def test_every_weight_is_carried_over(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    model = convert(source, bpe_tokenizer, max_length=100, attention_window=16).model
    src = source.state_dict()
    dst = model.state_dict()
    for key, tensor in src.items():
        if "position_embeddings" in key:
            continue
        target_key = key.replace("roberta.", "longformer.")
        torch.testing.assert_close(dst[target_key], tensor, rtol=0, atol=0)
    for i in range(source.config.num_hidden_layers):
        for proj in ("query", "key", "value"):
            local = dst[f"longformer.encoder.layer.{i}.attention.self.{proj}.weight"]
            torch.testing.assert_close(dst[f"longformer.encoder.layer.{i}.attention.self.{proj}_global.weight"], local)
    # RoBERTa rows 0-1 (padding offset) as they were, learned rows 2.. in place, then tiled.
    old = src["roberta.embeddings.position_embeddings.weight"]
    new = dst["longformer.embeddings.position_embeddings.weight"]
    assert new.shape[0] == 100 + 2
    torch.testing.assert_close(new[:34], old)
    torch.testing.assert_close(new[34:66], old[2:])


def test_tied_decoder_stays_tied(bpe_tokenizer):
    model = convert(make_source("roberta", "masked_lm"), bpe_tokenizer, max_length=64, attention_window=16).model
    assert model.lm_head.decoder.weight.data_ptr() == model.longformer.embeddings.word_embeddings.weight.data_ptr()


def test_untied_source_stays_untied():
    source = make_source("roberta", "masked_lm", tie_word_embeddings=False)
    with torch.no_grad():
        source.lm_head.decoder.weight.add_(1.0)
    model = convert(source, max_length=64, attention_window=16).model
    assert model.config.tie_word_embeddings is False
    torch.testing.assert_close(model.lm_head.decoder.weight, source.lm_head.decoder.weight)
    verify(source, model, smoke=False)


def test_config_is_derived_from_the_source_with_odd_shapes(bpe_tokenizer):
    source = make_source(
        "roberta",
        "sequence_classification",
        hidden_size=96,
        num_hidden_layers=5,
        num_attention_heads=6,
        intermediate_size=80,
        layer_norm_eps=1e-7,
        hidden_act="gelu_new",
        hidden_dropout_prob=0.13,
        attention_probs_dropout_prob=0.07,
        type_vocab_size=3,
        id2label={0: "neg", 1: "neu", 2: "pos"},
        label2id={"neg": 0, "neu": 1, "pos": 2},
        problem_type="single_label_classification",
    )
    conversion = convert(source, bpe_tokenizer, max_length=96, attention_window=32)
    config = conversion.model.config
    for name in CARRIED_FIELDS:
        assert getattr(config, name) == getattr(source.config, name), name
    assert config.num_labels == 3
    assert config.max_position_embeddings == 96 + 2
    assert config.attention_window == [32] * 5
    assert config.sep_token_id == bpe_tokenizer.sep_token_id
    assert config.dtype == torch.float32
    verify(source, conversion.model, bpe_tokenizer)


def test_bert_source_keeps_none_special_ids_and_zero_based_positions(wordpiece_tokenizer):
    source = make_source("bert", "base")
    model = convert(source, wordpiece_tokenizer, max_length=80, attention_window=64).model
    assert model.config.bos_token_id is None and model.config.eos_token_id is None
    assert model.config.pad_token_id == 0 and model.config.sep_token_id == wordpiece_tokenizer.sep_token_id
    old = source.embeddings.position_embeddings.weight
    new = model.embeddings.position_embeddings.weight
    assert new.shape[0] == 80 + 1  # one padding row (pad id 0), then the learned rows from 0
    torch.testing.assert_close(new[1:33], old)
    assert torch.count_nonzero(new[0]) == 0


def test_shrinking_keeps_the_first_rows(bpe_tokenizer):
    source = make_source("roberta", "base")
    model = convert(source, bpe_tokenizer, max_length=20, attention_window=20).model
    assert model.config.max_position_embeddings == 22
    report = verify(source, model, bpe_tokenizer)
    assert report.exact_length == 11  # one window: 20 / 2 + 1 tokens


def test_half_precision_keeps_or_casts_dtype(bpe_tokenizer):
    source = make_source("roberta", "masked_lm").to(torch.bfloat16)
    conversion = convert(source, bpe_tokenizer, max_length=64, attention_window=16)
    assert next(conversion.model.parameters()).dtype == torch.bfloat16
    assert conversion.model.config.dtype == torch.bfloat16
    cast = convert(make_source("roberta", "base"), max_length=64, attention_window=16, dtype="float16").model
    assert next(cast.parameters()).dtype == torch.float16


@pytest.mark.parametrize("head", HEADS)
def test_save_and_reload_with_auto_classes(head, tmp_path, bpe_tokenizer):
    from roberta2longformer import save_conversion

    source = make_source("roberta", head)
    conversion = convert(source, bpe_tokenizer, max_length=128, attention_window=ATTENTION_WINDOW)
    report = verify(source, conversion.model, bpe_tokenizer, smoke=False)
    save_conversion(conversion, report, tmp_path / "out")
    auto = {
        "base": transformers.AutoModel,
        "masked_lm": transformers.AutoModelForMaskedLM,
        "sequence_classification": transformers.AutoModelForSequenceClassification,
        "token_classification": transformers.AutoModelForTokenClassification,
        "question_answering": transformers.AutoModelForQuestionAnswering,
        "multiple_choice": transformers.AutoModelForMultipleChoice,
    }[head]
    reloaded = auto.from_pretrained(tmp_path / "out")
    assert type(reloaded) is type(conversion.model)
    assert (tmp_path / "out" / "model.safetensors").is_file()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "out")
    assert tokenizer.model_max_length == 128
    assert tokenizer("a long document")["input_ids"] == bpe_tokenizer("a long document")["input_ids"]
    verify(source, reloaded, tokenizer, smoke=False)


def test_callers_tokenizer_is_not_modified(bpe_tokenizer):
    before = bpe_tokenizer.model_max_length
    _, tokenizer = convert_roberta_to_longformer(
        make_source("roberta", "base"), bpe_tokenizer, 512, attention_window=16
    )
    assert bpe_tokenizer.model_max_length == before
    assert tokenizer.model_max_length == 512
    assert tokenizer is not bpe_tokenizer


def test_bert_masked_lm_whose_head_is_not_gelu_is_refused(wordpiece_tokenizer):
    # BERT's prediction head applies hidden_act; Longformer's (RoBERTa's) always applies gelu.
    source = make_source("bert", "masked_lm", hidden_act="gelu_new")
    with pytest.raises(ConversionError, match="masked-LM head applies gelu_new but Longformer's applies gelu"):
        convert(source, wordpiece_tokenizer, max_length=64, attention_window=ATTENTION_WINDOW)
    # The same backbone without the head converts exactly: only the head is the problem.
    base = make_source("bert", "base", hidden_act="gelu_new")
    report = verify(base, convert(base, wordpiece_tokenizer, max_length=64, attention_window=ATTENTION_WINDOW).model)
    assert report.passed
