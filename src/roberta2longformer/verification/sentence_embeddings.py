"""For a sentence-transformers source: the converted directory, loaded by ``SentenceTransformer``,
gives the source's sentence embeddings (after pooling and normalisation) on inputs both compute
exactly; at the source's own length, how close it stays is measured (cosine), not checked."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..core.loading import load_sentence_transformer
from ..targets import prepare_attention
from .compare import SAMPLE_TEXTS
from .report import Check

CASE = "sentence embeddings"


def _load(directory: str | Path):
    # Both directories passed the source checks before (the caller opened the source with its pickle opt-in,
    # and the converted directory carries the same modules).
    return load_sentence_transformer(directory, allow_pickle=True)


def sentence_embedding_checks(
    source_dir: str | Path,
    converted_dir: str | Path,
    exact_length: int,
    texts: Sequence[str],
    *,
    atol: float = 1e-4,
    fast_attention: bool = True,
) -> tuple[list[Check], list[dict[str, Any]]]:
    """(checks at ``exact_length`` tokens, measurements at the source's ``max_seq_length``)."""

    source, converted = _load(source_dir), _load(converted_dir)
    backbone = converted[0].auto_model
    prepare_attention(backbone, fast_attention)
    own_length = source.max_seq_length
    texts = list(texts)
    with torch.inference_mode():
        source.max_seq_length = converted.max_seq_length = exact_length
        expected = source.encode(texts, convert_to_tensor=True)
        actual = converted.encode(texts, convert_to_tensor=True)
        checks = [
            Check(
                CASE,
                f"SentenceTransformer.encode, {len(texts)} texts, ≤{exact_length} tokens",
                list(actual.shape),
                (expected - actual).abs().max().item(),
                atol,
            )
        ]
        long_text = [" ".join(texts * (1 + own_length // max(1, len(" ".join(texts).split()))))]
        source.max_seq_length = converted.max_seq_length = own_length
        a = source.encode(long_text, convert_to_tensor=True)
        b = converted.encode(long_text, convert_to_tensor=True)
    measured = [
        {
            "length": own_length,
            "regime": "sentence embedding at the source's max_seq_length",
            "max_abs_diff": (a - b).abs().max().item(),
            "mean_cosine": torch.nn.functional.cosine_similarity(a, b).mean().item(),
        }
    ]
    return checks, measured


def add_sentence_embedding_checks(
    report, source_dir: str | Path, converted_dir: str | Path, texts: Sequence[str] | None, *, fast_attention: bool
) -> None:
    """Add the checks (and measurements) of :func:`sentence_embedding_checks` to a verification report,
    on the report's exact length and ``texts`` (default: the verification's sample texts)."""
    checks, measured = sentence_embedding_checks(
        source_dir, converted_dir, report.exact_length, texts or SAMPLE_TEXTS, fast_attention=fast_attention
    )
    report.checks.extend(checks)
    report.approximation.extend(measured)
