"""The built-in English RoBERTa (builtin:austen-roberta): real pretrained weights, committed with their recipe."""

from __future__ import annotations

from pathlib import Path

import pytest
import transformers

from roberta2longformer import convert, verify
from roberta2longformer.core.locations import resolve_source
from roberta2longformer.train.evaluation import evaluate

ENGLISH = Path("/usr/share/common-licenses/GPL-3")  # a long English text every Debian machine has


@pytest.fixture(scope="module")
def austen():
    directory = resolve_source("builtin:austen-roberta")
    return (
        transformers.AutoModelForMaskedLM.from_pretrained(directory).eval(),
        transformers.AutoTokenizer.from_pretrained(directory),
        Path(directory),
    )


def test_builtin_model_ships_with_its_recipe_and_log(austen):
    model, tokenizer, directory = austen
    assert type(model) is transformers.RobertaForMaskedLM and model.config.max_position_embeddings == 130
    assert len(tokenizer) == model.config.vocab_size == 1000
    log = (directory / "training.log").read_text()
    assert "pretrain --from-config" in log and "steps: 8000" in log
    assert (directory / "metrics.csv").read_text().count("\n") > 100


def test_builtin_model_converts_exactly(austen):
    model, tokenizer, _ = austen
    conversion = convert(model, tokenizer, max_length=1024, attention_window=128)
    report = verify(model, conversion.model, tokenizer)
    assert report.passed and report.max_abs_diff <= 1e-4 and report.exact_length == 65


@pytest.mark.skipif(not ENGLISH.is_file(), reason="needs an English text at /usr/share/common-licenses/GPL-3")
def test_builtin_model_uses_context(austen):
    model, tokenizer, _ = austen
    text = [ENGLISH.read_text()[:20000]]
    wide, narrow = (evaluate(model, tokenizer, text, window=w) for w in (128, 8))
    assert wide.masked == narrow.masked and wide.loss < narrow.loss - 0.3
