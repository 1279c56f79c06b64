"""ELECTRA and DistilBERT sources: every target and head either exact at the usual bounds (odd shapes,
perturbed norms, padding, batch) or refused with the reason; their declared layouts are what transformers
saves; the command line converts and verifies them."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import HEAD_SUFFIXES, MORE_FAMILIES, make_source
from roberta2longformer import ConversionError, convert, verify
from roberta2longformer.cli import app
from roberta2longformer.core.families import family_for
from roberta2longformer.targets import all_targets, get_target

#: Odd sizes: 3 heads of 12, an inner size that is no multiple of anything else here.
ODD = {"hidden_size": 36, "num_attention_heads": 3, "intermediate_size": 50}
OPTIONS = {
    "longformer": {"attention_window": 64},  # exact up to 33 tokens ≥ the 32 learned positions
    "led": {"attention_window": 64, "decoder_max_length": 32},
    "bigbird": {"block_size": 4, "num_random_blocks": 1},
    "nystromformer": {"num_landmarks": 8},
    "extended": {},
}
#: What each family cannot give, and the words that say why.
REFUSED = {
    ("distilbert", "sequence_classification"): "applies ReLU on pre_classifier",
    ("distilbert", "multiple_choice"): "applies ReLU on pre_classifier",
    ("electra", "sequence_classification"): "applies gelu where the targets' apply tanh",
    ("electra", "multiple_choice"): "sequence summary",
    # DistilBERT's layer norms are built with eps 1e-12, LED's with 1e-5: every hidden state would differ
    ("distilbert", "led"): "fixed eps of 1e-05",
}
CASES = [
    (family, target.name, head)
    for family in MORE_FAMILIES
    for target in all_targets()
    for head in (("base", "masked_lm") if target.is_encoder_decoder else target.model_class_names)
]


def _perturbed(family: str, head: str, **overrides):
    """A tiny seeded source whose LayerNorms are not the identity (so a swapped norm cannot pass)."""
    eps = {"layer_norm_eps": 1e-5} if family == "electra" else {}
    model = make_source(family, head, **ODD, **eps, **overrides)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(1)
        for name, parameter in model.named_parameters():
            if "norm" in name.lower():
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model


@pytest.mark.parametrize("family, target, head", CASES)
def test_each_family_target_and_head_is_exact_or_refused_with_the_reason(family, target, head, tokenizer_for):
    tokenizer = tokenizer_for(family)
    source = _perturbed(family, head)
    unsupported = get_target(target).unsupported_heads.get(head)
    refused = REFUSED.get((family, head)) or REFUSED.get((family, target))
    if refused or unsupported:
        with pytest.raises(ConversionError, match=refused or "would not compute"):
            convert(source, tokenizer, to=target, max_length=128, **OPTIONS[target])
        return
    conversion = convert(source, tokenizer, to=target, max_length=128, **OPTIONS[target])
    report = verify(source, conversion.model, tokenizer, raise_on_failure=False)
    assert report.passed, report.failures()
    assert report.max_abs_diff <= 1e-4 and report.exact_length >= 28
    assert any("padded" in c.case for c in report.checks) and any("text" in c.case for c in report.checks)


@pytest.mark.parametrize("family", list(MORE_FAMILIES))
@pytest.mark.parametrize("head", [h for h in HEAD_SUFFIXES if h not in ("sequence_classification", "multiple_choice")])
def test_the_declared_layout_is_what_transformers_saves(family, head):
    from roberta2longformer.compat import saved_state

    model = make_source(family, head)
    source_family = family_for(model.config)
    saved = saved_state(model)
    canonical = {key: tuple(value.shape) for key, value in source_family.to_canonical(saved, head).items()}
    assert canonical == source_family.canonical_layout(model.config, head)


def test_distilbert_carries_its_own_config_names_and_says_what_its_positions_are(tokenizer_for):
    source = make_source("distilbert", "masked_lm", activation="gelu", sinusoidal_pos_embds=True)
    conversion = convert(source, tokenizer_for("distilbert"), max_length=128, attention_window=64)
    config = conversion.model.config
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (32, 48, 2)
    assert (config.layer_norm_eps, config.type_vocab_size, config.hidden_act) == (1e-12, 1, "gelu")
    assert config.hidden_dropout_prob == source.config.dropout
    assert any("fixed sinusoids" in note for note in conversion.notes)
    table = conversion.model.longformer.embeddings.position_embeddings.weight
    torch.testing.assert_close(table[1:33], source.distilbert.embeddings.position_embeddings.weight, rtol=0, atol=0)
    assert not conversion.model.longformer.embeddings.token_type_embeddings.weight.any()  # adds nothing
    assert verify(source, conversion.model, tokenizer_for("distilbert")).passed


@pytest.mark.parametrize(
    "make, phrase",
    [
        (lambda: make_source("electra", "base", embedding_size=16), "embeddings_project"),
        (lambda: make_source("electra", "masked_lm", embedding_size=16), "embedding_size equals hidden_size"),
        (lambda: transformers.ElectraForPreTraining(make_source("electra", "base").config), "pretraining head"),
        (lambda: transformers.AlbertModel(transformers.AlbertConfig(hidden_size=32, num_attention_heads=4,
                                                                     intermediate_size=48, num_hidden_layers=1)),
         "supported families are RoBERTa"),
    ],
    ids=["electra projection", "electra generator", "electra discriminator", "albert"],
)  # fmt: skip
def test_what_no_target_can_reproduce_is_refused_in_one_sentence(make, phrase, tmp_path):
    source = make()
    source.save_pretrained(tmp_path / "source")
    result = CliRunner().invoke(
        app,
        ["convert", str(tmp_path / "source"), str(tmp_path / "out"), "--max-length", "64", "--attention-window", "16"],
    )
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("family", list(MORE_FAMILIES))
def test_cli_converts_streaming_and_verifies(family, saved_source, tmp_path):
    source = saved_source(family, "masked_lm")
    out = tmp_path / "long"
    result = CliRunner().invoke(
        app, ["convert", str(source), str(out), "--max-length", "128", "--attention-window", "64"]
    )
    assert result.exit_code == 0, result.output
    assert "by streaming" in result.output
    assert type(transformers.AutoModelForMaskedLM.from_pretrained(out)).__name__ == "LongformerForMaskedLM"
    assert CliRunner().invoke(app, ["verify", str(source), str(out)]).exit_code == 0
    card = (out / "README.md").read_text()
    assert (
        f"{MORE_FAMILIES[family][0]}ForMaskedLM" in card
        and json.loads((out / "verification.json").read_text())["checks"]
    )
