"""``import-fairseq``: a fairseq RoBERTa checkpoint written as a transformers model, its tokenizer and a card."""

from __future__ import annotations

from pathlib import Path

from ..core.fairseq import load_fairseq_roberta
from ..io.output import atomic_output_dir, check_output_dir
from .card import import_card


def import_fairseq(
    checkpoint: str | Path,
    output: str | Path,
    *,
    allow_pickle: bool = False,
    dictionary: str | Path | None = None,
    force: bool = False,
):
    """Write the fairseq RoBERTa ``checkpoint`` (with its ``dict.txt``) as a ``RobertaForMaskedLM`` and tokenizer
    in ``output``, atomically; returns the model."""
    keep = [checkpoint, *([dictionary] if dictionary else [])]
    check_output_dir(output, force=force, keep=keep)  # before reading a large checkpoint
    model, tokenizer = load_fairseq_roberta(checkpoint, allow_pickle=allow_pickle, dictionary=dictionary)
    with atomic_output_dir(output, force=force, keep=keep) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "README.md").write_text(import_card(model, str(checkpoint)), encoding="utf-8")
    return model
