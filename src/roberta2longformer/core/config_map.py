"""Target configs derived from the source config: carried fields, then explicit overrides.

Nothing comes from a target's defaults unless the source lacks the field entirely: a BERT source
without ``bos_token_id`` gives a target with ``bos_token_id=None``, not Longformer's default 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import PretrainedConfig

#: Fields every supported source and target share, carried over verbatim.
CARRIED_FIELDS: tuple[str, ...] = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_act",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "type_vocab_size",
    "initializer_range",
    "layer_norm_eps",
    "pad_token_id",
    "bos_token_id",
    "eos_token_id",
    "tie_word_embeddings",
    "id2label",
    "label2id",
    "problem_type",
)


#: Fields carried only to targets whose config declares them (elsewhere a note says they are lost).
CARRIED_WHERE_DECLARED: tuple[str, ...] = ("classifier_dropout",)


def declares(config_class: type[PretrainedConfig], name: str) -> bool:
    return name in getattr(config_class, "__dataclass_fields__", {})


def carried_fields(
    source: PretrainedConfig, config_class: type[PretrainedConfig], field_map: Mapping[str, str | None]
) -> dict[str, Any]:
    """The source's values under the target's field names (``field_map``: renamed, ``None``: not carried)."""
    optional = [
        n
        for n in CARRIED_WHERE_DECLARED
        if getattr(source, n, None) is not None and declares(config_class, field_map.get(n, n))
    ]
    names = [*CARRIED_FIELDS, *optional]
    return {field_map.get(n, n): getattr(source, n, None) for n in names if field_map.get(n, n) is not None}


def derive_config(
    source: PretrainedConfig,
    config_class: type[PretrainedConfig],
    overrides: Mapping[str, Any],
    *,
    dtype: torch.dtype,
    field_map: Mapping[str, str | None] | None = None,
) -> PretrainedConfig:
    """Build ``config_class`` from the source's fields, then apply the target's ``overrides``."""
    fields = carried_fields(source, config_class, field_map or {})
    fields.update(overrides)
    config = config_class(**fields)
    config.dtype = dtype
    return config


def uncarried_notes(
    source: PretrainedConfig, config_class: type[PretrainedConfig], field_map: Mapping[str, str | None] | None = None
) -> list[str]:
    """Source settings a target cannot represent, to be written in the report (not silently lost)."""
    notes = []
    classifier_dropout = getattr(source, "classifier_dropout", None)
    if (
        classifier_dropout is not None
        and classifier_dropout != source.hidden_dropout_prob
        and not declares(config_class, (field_map or {}).get("classifier_dropout", "classifier_dropout") or "")
    ):
        notes.append(
            f"classifier_dropout={classifier_dropout} has no equivalent; the head's dropout is "
            f"hidden_dropout_prob={source.hidden_dropout_prob} (affects training only)."
        )
    return notes
