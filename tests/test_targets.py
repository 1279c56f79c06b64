"""The contract every registered target keeps, checked for each one (a new target is tested by being registered).

- it converts every head it declares, exactly where it says (verify passes at its exact length);
- the result round-trips through the ``transformers`` Auto class of its head;
- its declared properties match what its models do (global tokens, encoder-decoder, fast attention…);
- its options have defaults that validate, and the command line offers them under its name;
- ``convert`` + ``verify`` work end to end on the command line;
- what streaming writes without building any model class is what that class saves.
"""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import FAMILY_CLASSES, HEAD_SUFFIXES, make_source
from roberta2longformer import convert, fast, save_conversion, verify
from roberta2longformer.cli import app
from roberta2longformer.core.families import family_for
from roberta2longformer.core.heads import head_for_class_name, saved_class_name
from roberta2longformer.core.streaming import check_against_target, planned_tensors, read_source
from roberta2longformer.core.vocabulary import AUTO_CLASS
from roberta2longformer.targets import all_targets, get_target, target_names, target_or_none

#: Options that fit the tiny sources (32 learned positions) for each target; the rest are the defaults.
TINY_OPTIONS = {
    "longformer": {"attention_window": 16},
    "led": {"attention_window": 16, "decoder_max_length": 32},
    "bigbird": {"block_size": 4, "num_random_blocks": 1},
    "nystromformer": {"num_landmarks": 8},
    "extended": {},
}
#: The heads an encoder source has (an encoder-decoder's: tests/test_bart.py).
TARGET_HEADS = [
    (t.name, head)
    for t in all_targets()
    for head in t.model_class_names
    if head not in ("conditional_generation", "seq2seq_base")
]
#: RoBERTa's own checkpoints use 1e-5 (RobertaConfig's default is BERT's 1e-12, which LED refuses).
EPS = {"layer_norm_eps": 1e-5}


def test_every_registered_target_has_tiny_options_here():
    """A new target must say here how to convert the tiny sources, so that this contract covers it."""
    assert set(TINY_OPTIONS) == set(target_names())


@pytest.mark.parametrize("name, head", TARGET_HEADS)
def test_converts_each_declared_head_exactly_and_round_trips_through_auto_classes(name, head, tmp_path, bpe_tokenizer):
    target = get_target(name)
    source = make_source("roberta", head, **EPS)
    conversion = convert(source, bpe_tokenizer, to=name, max_length=64, **TINY_OPTIONS[name])
    classes = target.for_source(source.config).model_class_names  # the source's own, for a target that keeps them
    assert type(conversion.model).__name__ == classes[head]
    report = verify(source, conversion.model, bpe_tokenizer, smoke=True)
    assert report.passed and report.max_abs_diff <= 1e-4
    exact = target.exact_length(conversion.model.config)
    assert report.exact_length == min(32, exact if exact is not None else 32)

    saved = save_conversion(conversion, report, tmp_path / name)
    auto = "AutoModelForSeq2SeqLM" if target.is_encoder_decoder else AUTO_CLASS[head]
    reloaded = getattr(transformers, auto).from_pretrained(saved)
    assert type(reloaded).__name__ == classes[head]
    assert target_or_none(reloaded.config).name == name
    assert verify(source, reloaded, bpe_tokenizer, smoke=False).passed


@pytest.mark.parametrize("name", target_names())
def test_declared_properties_match_the_models(name, bpe_tokenizer):
    target = get_target(name)
    model = convert(
        make_source("roberta", "masked_lm", **EPS), bpe_tokenizer, to=name, max_length=64, **TINY_OPTIONS[name]
    ).model
    ids = torch.tensor([[0, 5, 6, 2]])
    assert ("global_attention_mask" in target.extra_inputs(ids, True)) == target.uses_global_tokens
    assert (target.compared_module(model) is not model) == target.is_encoder_decoder
    assert fast.applies_to(model) == target.has_fast_attention
    assert bool(target.approximation(model, 32)) == target.approximates_attention
    assert target.max_length(model.config) == 64
    assert target.saved_options(model.config).keys() <= {o.name for o in target.all_options()}


@pytest.mark.parametrize("target", all_targets(), ids=lambda t: t.name)
def test_options_have_valid_defaults_and_appear_in_convert_help(target):
    names = [option.name for option in target.all_options()]
    assert len(names) == len(set(names))
    for option in target.all_options():
        assert option.default is None or isinstance(option.default, option.type)
        assert option.choices is None or option.default in option.choices
    target.validate(4096, target.default_options())
    help_text = CliRunner().invoke(app, ["convert", "--help"], terminal_width=200).output
    assert f"{target.name} ({target.title})" in " ".join(help_text.split())  # --to names each target
    if target.options:
        heading = next(
            line for line in help_text.splitlines() if f"--to {target.name}" in line or f"or {target.name})" in line
        )
        assert target.title in heading
    for option in target.options:
        assert f"--{option.cli_name}" in help_text
    assert target.name in help_text.split("--to [", 1)[1].split("]", 1)[0]


@pytest.mark.parametrize("name", target_names())
def test_cli_convert_then_verify(name, saved_source, tmp_path):
    source = saved_source("roberta", "masked_lm", **EPS)
    out = tmp_path / f"{name}-out"
    options = [f"--{key.replace('_', '-')}={value}" for key, value in TINY_OPTIONS[name].items()]
    converted = CliRunner().invoke(
        app, ["convert", str(source), str(out), "--to", name, "--max-length", "64", *options]
    )
    assert converted.exit_code == 0, converted.output
    assert json.loads((out / "verification.json").read_text())["passed"]
    checked = CliRunner().invoke(app, ["verify", str(source), str(out), "--no-smoke"])
    assert checked.exit_code == 0, checked.output
    assert "Verified: max |diff|" in checked.output


def test_an_option_of_another_target_is_refused(saved_source, tmp_path):
    result = CliRunner().invoke(
        app, ["convert", str(saved_source()), str(tmp_path / "o"), "--to", "bigbird", "--attention-window", "16"]
    )
    assert result.exit_code == 2 and "--attention-window does not apply to --to bigbird" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("family", list(FAMILY_CLASSES))
@pytest.mark.parametrize("head", list(HEAD_SUFFIXES))
@pytest.mark.parametrize("tied", [True, False])
def test_the_declared_source_layout_is_what_transformers_saves(family, head, tied):
    """Streaming checks checkpoints against SourceFamily.canonical_layout instead of building their class."""
    from roberta2longformer.compat import saved_state

    model = make_source(family, head, tie_word_embeddings=tied)
    source_family = family_for(model.config)
    saved = saved_state(model)
    canonical = {key: tuple(value.shape) for key, value in source_family.to_canonical(saved, head).items()}
    assert canonical == source_family.canonical_layout(model.config, head)


@pytest.mark.parametrize("name, head", TARGET_HEADS)
def test_what_streaming_plans_without_the_target_class_is_what_the_class_saves(name, head, saved_source):
    """The plan (from declared layouts only) against the target built on the meta device."""
    from roberta2longformer.core.loading import load_config
    from roberta2longformer.core.plan import make_request, plan_conversion

    source = saved_source("roberta", head, **EPS)
    config = load_config(source)
    class_name = saved_class_name(config)
    source_head = head_for_class_name(class_name)
    state, _ = read_source(str(source), config, class_name, source_head)
    tokenizer = _tokenizer(source) if name == "led" else None  # LED takes its start and end ids from it
    request = make_request(get_target(name), 64, None, 0, TINY_OPTIONS[name])
    plan = plan_conversion(config, source_head, state, tokenizer, request)
    check_against_target(plan.build(meta=True), planned_tensors(plan))  # raises on any difference


def _tokenizer(path):
    return transformers.AutoTokenizer.from_pretrained(path)
