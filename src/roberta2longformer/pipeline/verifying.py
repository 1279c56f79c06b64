"""Verifying saved models: a converted (or resized) directory against the model it was made from."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.loading import load_model
from ..io.output import recorded_options
from ..io.sentence_transformers import is_sentence_transformer
from .source import open_source

if TYPE_CHECKING:
    from ..verification import VerificationReport


def verify_saved(
    source: str | Path,
    converted: str | Path,
    *,
    smoke: bool = True,
    seed: int = 0,
    allow_pickle: bool = False,
    texts: Sequence[str] | None = None,
    fast_attention: bool = True,
) -> VerificationReport:
    """The proof that ``converted`` computes what ``source`` computes, with the options recorded beside it
    (and, for two sentence-transformers directories, their sentence embeddings); not raising."""
    from ..verification import verify as run_verify  # model classes: loaded when verifying, not on import
    from ..verification.sentence_embeddings import add_sentence_embedding_checks

    opened = open_source(source, allow_pickle=allow_pickle, long_model=True)
    report = run_verify(
        opened.load(),
        load_model(converted),
        opened.tokenizer,
        smoke=smoke,
        seed=seed,
        raise_on_failure=False,
        source_name=str(source),
        texts=texts,
        options=recorded_options(converted),
        fast_attention=fast_attention,
    )
    if opened.sentence_transformer is not None and is_sentence_transformer(converted):
        add_sentence_embedding_checks(
            report, opened.sentence_transformer, converted, texts, fast_attention=fast_attention
        )
    return report
