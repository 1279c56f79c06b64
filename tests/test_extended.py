"""``--to extended``: the source's own class with a longer position table, exact on every input the source
could read, for every family and head we take (the contract over all targets is in test_targets.py)."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from click.testing import CliRunner

from helpers import FAMILY_CLASSES, HEAD_SUFFIXES, MORE_FAMILIES, make_source
from roberta2longformer import convert, resize, save_conversion, verify
from roberta2longformer.cli import app
from roberta2longformer.core.families import family_for
from roberta2longformer.core.vocabulary import AUTO_CLASS
from roberta2longformer.targets import target_or_none

#: Every encoder family and every head it converts with (DistilBERT's and ELECTRA's sequence-classification
#: and multiple-choice heads are refused for every target, extended included: test_families.py).
FAMILY_HEADS = [
    (family, head)
    for family in {**FAMILY_CLASSES, **MORE_FAMILIES}
    for head in HEAD_SUFFIXES
    if head not in family_for(make_source(family, "base").config).refused_heads
]


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _tokenizer(family, bpe_tokenizer, wordpiece_tokenizer):
    return bpe_tokenizer if family in ("roberta", "xlm-roberta", "camembert") else wordpiece_tokenizer


@pytest.mark.parametrize("family, head", FAMILY_HEADS, ids=lambda v: v)
def test_the_source_class_is_kept_and_exact_at_its_full_length(
    family, head, tmp_path, bpe_tokenizer, wordpiece_tokenizer
):
    source = make_source(family, head)
    tokenizer = _tokenizer(family, bpe_tokenizer, wordpiece_tokenizer)
    conversion = convert(source, tokenizer, to="extended", max_length=96)
    # SDPA wherever the class has it (transformers 4.57's ELECTRA does not: it runs eager, as its source did)
    sdpa = "sdpa" if type(source)._supports_sdpa else "eager"
    assert type(conversion.model) is type(source) and conversion.model.config._attn_implementation == sdpa
    report = verify(source, conversion.model, tokenizer, smoke=True)
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 32  # the source's whole length
    longest = max(c.case for c in report.checks if "tokens" in c.case and "batch 1" in c.case)
    assert "32 tokens" in longest
    saved = save_conversion(conversion, report, tmp_path / "extended")
    reloaded = getattr(transformers, AUTO_CLASS[head]).from_pretrained(saved)
    assert type(reloaded) is type(source) and target_or_none(reloaded.config).name == "extended"
    assert reloaded.config.max_position_embeddings == source.config.max_position_embeddings + 64
    ids = torch.randint(5, 300, (1, 96))
    shape = (1, 2, 96) if head == "multiple_choice" else (1, 96)
    with torch.no_grad():
        output = reloaded(input_ids=ids.expand(shape).contiguous())
    assert all(torch.isfinite(v).all() for v in output.values() if isinstance(v, torch.Tensor))


def test_every_source_weight_is_carried_under_its_own_name(bpe_tokenizer):
    source = make_source("roberta", "masked_lm")
    model = convert(source, bpe_tokenizer, to="extended", max_length=96, position_init="interpolate").model
    before, after = source.state_dict(), model.state_dict()
    assert before.keys() == after.keys()
    table = "roberta.embeddings.position_embeddings.weight"
    assert all(torch.equal(before[k], after[k]) for k in before if k != table and "position_ids" not in k)
    assert torch.equal(after[table][:34], before[table]) and after[table].shape == (98, 32)


def test_extend_positions_returns_the_source_class_and_a_longer_tokenizer(bpe_tokenizer):
    from roberta2longformer import extend_positions

    source = make_source("roberta", "masked_lm")
    model, tokenizer = extend_positions(source, bpe_tokenizer, 96)
    assert type(model) is type(source) and model.config.max_position_embeddings == 98
    assert tokenizer.model_max_length == 96
    with pytest.raises(Exception, match="only lengthens"):
        extend_positions(source, bpe_tokenizer, 16)


def test_a_bart_grows_both_tables_and_resizes_again(tmp_path, bpe_tokenizer):
    from test_bart import tiny_bart

    source = tiny_bart()
    conversion = convert(source, bpe_tokenizer, to="extended", max_length=96)
    model = conversion.model
    assert type(model) is transformers.BartForConditionalGeneration and model.config.max_position_embeddings == 96
    assert (
        model.model.encoder.embed_positions.weight.shape == model.model.decoder.embed_positions.weight.shape == (98, 32)
    )
    assert verify(source, model, bpe_tokenizer).passed
    saved = save_conversion(conversion, None, tmp_path / "bart")
    longer = resize(saved, None, 128)
    assert longer.model.model.decoder.embed_positions.weight.shape == (130, 32)
    assert verify(model, longer.model, bpe_tokenizer).passed


def test_distilberts_sinusoids_are_extended_as_sinusoids(wordpiece_tokenizer):
    source = make_source("distilbert", "base", sinusoidal_pos_embds=True)
    conversion = convert(source, wordpiece_tokenizer, to="extended", max_length=96)
    table = conversion.model.embeddings.position_embeddings.weight
    reference = transformers.DistilBertModel(
        transformers.DistilBertConfig(**{**source.config.to_dict(), "max_position_embeddings": 96})
    ).embeddings.position_embeddings.weight
    torch.testing.assert_close(table[:32], source.embeddings.position_embeddings.weight, rtol=0, atol=0)
    torch.testing.assert_close(table, reference, rtol=0, atol=1e-6)
    assert any("sinusoids" in note for note in conversion.notes)


def test_a_sentence_transformer_keeps_its_modules_and_reads_longer(tmp_path, wordpiece_tokenizer):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    from helpers import CORPUS, save_source

    backbone = save_source(tmp_path / "bert", "bert", "base", wordpiece_tokenizer)
    SentenceTransformer(modules=[Transformer(str(backbone), max_seq_length=24), Pooling(32, "mean"), Normalize()],
                        device="cpu").save(str(tmp_path / "st"))  # fmt: skip
    out = tmp_path / "long"
    result = run("convert", tmp_path / "st", out, "--to", "extended", "--max-length", 128)
    assert result.exit_code == 0, result.output
    assert "sentence embeddings" in result.output and json.loads((out / "verification.json").read_text())["passed"]
    short, long = SentenceTransformer(str(tmp_path / "st"), device="cpu"), SentenceTransformer(str(out), device="cpu")
    assert long.max_seq_length == 128 and type(long[0].auto_model).__name__ == "BertModel"
    long.max_seq_length = 24
    gap = (short.encode(CORPUS[:4], convert_to_tensor=True) - long.encode(CORPUS[:4], convert_to_tensor=True)).abs()
    assert gap.max() <= 1e-5


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--attention-window", "16"], "--attention-window does not apply to --to extended"),
        (["--block-size", "16"], "--block-size does not apply to --to extended"),
        (["--max-length", "16"], "shorter than the 32 positions the source reads"),
    ],
)
def test_options_of_other_targets_and_a_shorter_length_are_refused(saved_source, tmp_path, args, phrase):
    result = run("convert", saved_source(), tmp_path / "out", "--to", "extended", *args)
    assert result.exit_code == 2 and phrase in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_a_longformer_source_is_pointed_to_resize(saved_source, tmp_path):
    long = tmp_path / "long"
    assert run("convert", saved_source(), long, "--max-length", 64, "--attention-window", 16).exit_code == 0
    result = run("convert", long, tmp_path / "out", "--to", "extended", "--max-length", 128)
    assert result.exit_code == 2 and "resize" in result.output, result.output


def test_cli_convert_verify_resize_and_train_an_extended_model(saved_source, tmp_path):
    """The commands a user runs next all take the new target: verify, resize, pretrain, evaluate, finetune."""
    from helpers import CORPUS

    source = saved_source("roberta", "masked_lm", layer_norm_eps=1e-5)
    out = tmp_path / "extended"
    converted = run("convert", source, out, "--to", "extended", "--max-length", 64)
    assert converted.exit_code == 0, converted.output
    card = (out / "README.md").read_text()
    assert "RobertaForMaskedLM" in card and "AutoModelForMaskedLM" in card and "None" not in card
    assert run("verify", source, out).exit_code == 0
    resized = run("resize", out, tmp_path / "longer", "--max-length", 128)
    assert resized.exit_code == 0, resized.output
    docs = tmp_path / "docs.txt"
    docs.write_text(" ".join(CORPUS * 6))
    trained = run("pretrain", out, "--data", docs, "-o", tmp_path / "run", "--max-steps", 1, "--batch-size", 1,
                  "--held-out", 0, "--precision", "fp32")  # fmt: skip
    assert trained.exit_code == 0, trained.output
    evaluated = run("evaluate", source, out, "--data", docs, "--window", 32)
    assert evaluated.exit_code == 0, evaluated.output
    rows = [json.dumps({"text": text, "label": str(i % 2)}) for i, text in enumerate(CORPUS * 2)]
    (tmp_path / "train.jsonl").write_text("\n".join(rows) + "\n")
    tuned = run("finetune", out, "--train", tmp_path / "train.jsonl", "--eval", tmp_path / "train.jsonl",
                "-o", tmp_path / "clf", "--max-steps", 1, "--batch-size", 2, "--precision", "fp32")  # fmt: skip
    assert tuned.exit_code == 0, tuned.output
    classifier = transformers.AutoModelForSequenceClassification.from_pretrained(tmp_path / "clf" / "final")
    assert type(classifier).__name__ == "RobertaForSequenceClassification"


def test_fast_attention_asked_for_on_an_extended_model_says_it_has_nothing_to_do(saved_source, tmp_path):
    source = saved_source()
    asked = run("convert", source, tmp_path / "a", "--to", "extended", "--max-length", 64, "--fast-attention")
    assert asked.exit_code == 0 and "--fast-attention has nothing to do" in asked.output, asked.output
    default = run("convert", source, tmp_path / "b", "--to", "extended", "--max-length", 64)
    assert default.exit_code == 0 and "--fast-attention" not in default.output
    verified = run("verify", source, tmp_path / "a", "--fast-attention")
    assert verified.exit_code == 0 and "--fast-attention has nothing to do" in verified.output
    longformer = run(
        "convert", source, tmp_path / "c", "--max-length", 64, "--attention-window", 16, "--fast-attention"
    )
    assert longformer.exit_code == 0 and "nothing to do" not in longformer.output
