"""Saving a conversion made in memory (``convert`` then ``verify``, as the API's users do)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..core.locations import resolve_source
from ..errors import ConversionError
from ..io.sentence_transformers import is_sentence_transformer
from .write import Proof, model_writer, write_conversion

if TYPE_CHECKING:
    from ..core.plan import Conversion
    from ..verification import VerificationReport


def save_conversion(
    conversion: Conversion,
    report: VerificationReport | None,
    path: str | Path,
    *,
    force: bool = False,
    max_shard_size: int | str = "5GB",
) -> Path:
    """Write model (safetensors, sharded over ``max_shard_size``), tokenizer, ``verification.json`` and
    ``README.md`` atomically; a failed ``report`` raises its :class:`ToleranceError` and writes nothing."""
    keep = [conversion.source_name] if conversion.source_name else []
    proof = Proof(check=lambda staging: report, sentence_transformer=_sentence_transformer(conversion.source_name))
    write_conversion(conversion, path, model_writer(conversion, max_shard_size), proof, force=force, keep=keep)
    return Path(path)


def _sentence_transformer(source_name: str) -> Path | None:
    """The source's directory when it is a sentence-transformers one (``modules.json``), else ``None``."""
    if not source_name:
        return None
    try:
        location = Path(resolve_source(source_name))
    except ConversionError:
        return None
    return location if location.is_dir() and is_sentence_transformer(location) else None
