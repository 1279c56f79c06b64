"""The original project's README example, verbatim but for a locally built model instead of a hub id."""

from __future__ import annotations

import pytest
import torch
from transformers import (
    LongformerForSequenceClassification,
    LongformerModel,
    RobertaModel,
    RobertaTokenizerFast,
)

from helpers import make_source


@pytest.fixture
def local_roberta(tmp_path, bpe_tokenizer):
    path = tmp_path / "gottbert-like"
    make_source("roberta", "base").save_pretrained(path)
    bpe_tokenizer.save_pretrained(path)
    return str(path)


def test_original_readme_example(local_roberta, tmp_path):
    from roberta2longformer import convert_roberta_to_longformer

    roberta_model = RobertaModel.from_pretrained(local_roberta)
    roberta_tokenizer = RobertaTokenizerFast.from_pretrained(local_roberta)

    longformer_model, longformer_tokenizer = convert_roberta_to_longformer(
        roberta_model=roberta_model,
        roberta_tokenizer=roberta_tokenizer,
        longformer_max_length=8192,
    )
    assert isinstance(longformer_model, LongformerModel)
    first_lf = list(longformer_model.encoder.state_dict().items())[0]
    first_rb = list(roberta_model.encoder.state_dict().items())[0]
    assert first_lf[0] == first_rb[0]
    torch.testing.assert_close(first_lf[1], first_rb[1])

    inputs = longformer_tokenizer(
        "Er sah die Bibliothek am Fluss.",  # short: the tiny source has 32 positions
        return_tensors="pt",
    )
    outputs = longformer_model(**inputs)
    with torch.inference_mode():
        expected = roberta_model(**inputs).last_hidden_state
    torch.testing.assert_close(outputs.last_hidden_state.detach(), expected, atol=1e-4, rtol=0)

    longformer_model.save_pretrained(tmp_path / "longformer-gottbert")
    longformer_tokenizer.save_pretrained(tmp_path / "longformer-gottbert")
    seqclass_model = LongformerForSequenceClassification.from_pretrained(tmp_path / "longformer-gottbert/")
    assert seqclass_model.config.max_position_embeddings == 8192 + 2
    assert seqclass_model.config.hidden_size == roberta_model.config.hidden_size


def test_paths_work_in_place_of_objects(local_roberta):
    from roberta2longformer import convert_roberta_to_longformer

    model, tokenizer = convert_roberta_to_longformer(local_roberta, longformer_max_length=256, attention_window=64)
    assert isinstance(model, LongformerModel)
    assert tokenizer is not None and tokenizer.model_max_length == 256
