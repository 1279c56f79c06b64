"""The source families we convert from, one declaration per module, and the lookups over them.

Adding a family is one :class:`~.base.SourceFamily` in a module of this package and its entry in
:data:`FAMILIES`; the conversion, the checkpoint checks and the command line find it here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConversionError
from .bart import BART
from .base import SourceFamily
from .bert import BERT
from .distilbert import DISTILBERT
from .electra import ELECTRA
from .roberta import CAMEMBERT, LONGFORMER, ROBERTA, XLM_ROBERTA

if TYPE_CHECKING:
    from transformers import PretrainedConfig

FAMILIES: tuple[SourceFamily, ...] = (ROBERTA, XLM_ROBERTA, CAMEMBERT, LONGFORMER, BERT, ELECTRA, DISTILBERT, BART)

__all__ = ["FAMILIES", "SourceFamily", "family_for", "is_supported", "supported_families"]


def supported_families() -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES)


def is_supported(config: PretrainedConfig) -> bool:
    return any(getattr(config, "model_type", None) in family.model_types for family in FAMILIES)


def family_for(config: PretrainedConfig) -> SourceFamily:
    """The family of a source config, or a clear error that lists the supported ones."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise ConversionError(
        f"Source model type {model_type!r} is not supported; supported families are {supported_families()}."
    )
