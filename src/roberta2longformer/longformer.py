"""RoBERTa-family → Longformer, declared on the shared core.

Longformer *is* RoBERTa with sliding-window self-attention plus separate projections for global
tokens, so every weight has a place: the global ``query/key/value`` start as copies of the local
ones, and on inputs short enough to fit in one window (``attention_window / 2 + 1`` tokens) the
model computes exactly what its source computed, global tokens or not. Longformer numbers
positions like RoBERTa (``pad_token_id + 1`` onwards), so the offset rows carry over as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import transformers
from transformers import PretrainedConfig

from .errors import ConversionError, is_positive_int
from .positions import check_position_init, roberta_position_offset
from .registry import TargetSpec, register
from .weights import Rename, rename


def _key_rules(prefix: str) -> tuple[Rename, ...]:
    return (
        rename(
            r"base\.encoder\.layer\.(?P<i>\d+)\.attention\.self\.(?P<p>query|key|value)\.(?P<t>\w+)",
            rf"{prefix}encoder.layer.\g<i>.attention.self.\g<p>.\g<t>",
            rf"{prefix}encoder.layer.\g<i>.attention.self.\g<p>_global.\g<t>",
        ),
        rename(r"base\.(?P<rest>.+)", rf"{prefix}\g<rest>"),
        rename(r"(?P<k>(?:lm_head|classifier|qa_outputs)\..+)", r"\g<k>"),
    )


def attention_windows(window: int | list[int] | tuple[int, ...]) -> list[int]:
    """Validated per-layer windows: one even number of tokens, or one per layer."""
    windows = list(window) if isinstance(window, (list, tuple)) else [window]
    if not windows or not all(is_positive_int(w) and w % 2 == 0 for w in windows):
        raise ConversionError(
            f"attention_window must be a positive even number of tokens (e.g. 512), got {window!r}."
        )
    return windows


def check_window_count(windows: list[int], layers: int) -> None:
    if len(windows) > 1 and len(windows) != layers:
        raise ConversionError(
            f"attention_window has {len(windows)} values but the source has {layers} layers; "
            "give one value, or one per layer."
        )


def _validate(max_length: int, options: Mapping[str, Any]) -> None:
    attention_windows(options["attention_window"])
    check_position_init(options["position_init"])


def _config_overrides(
    source: PretrainedConfig, max_length: int, options: Mapping[str, Any], special: Mapping[str, Any]
) -> dict:
    check_window_count(attention_windows(options["attention_window"]), source.num_hidden_layers)
    return {
        "max_position_embeddings": max_length + roberta_position_offset(source.pad_token_id),
        "attention_window": options["attention_window"],
        "sep_token_id": special.get("sep_token_id"),
    }


def one_window(config: PretrainedConfig) -> int:
    """Inputs up to this length fit in every layer's window, so attention is full attention."""
    window = config.attention_window
    window = min(window) if isinstance(window, (list, tuple)) else window
    return window // 2 + 1


def global_first_token(input_ids: torch.Tensor, global_first: bool) -> dict[str, torch.Tensor]:
    mask = torch.zeros_like(input_ids)
    if global_first:
        mask[..., 0] = 1
    return {"global_attention_mask": mask}


LONGFORMER = register(
    TargetSpec(
        name="longformer",
        config_class=transformers.LongformerConfig,
        model_classes={
            "base": transformers.LongformerModel,
            "masked_lm": transformers.LongformerForMaskedLM,
            "sequence_classification": transformers.LongformerForSequenceClassification,
            "token_classification": transformers.LongformerForTokenClassification,
            "question_answering": transformers.LongformerForQuestionAnswering,
            "multiple_choice": transformers.LongformerForMultipleChoice,
        },
        base_prefix="longformer",
        key_rules=_key_rules,
        position_offset=lambda config: roberta_position_offset(config.pad_token_id),
        config_overrides=_config_overrides,
        validate=_validate,
        exact_length=one_window,
        extra_inputs=global_first_token,
        default_options={"attention_window": 512, "position_init": "tile"},
        max_length=lambda config: config.max_position_embeddings - roberta_position_offset(config.pad_token_id),
        byte_level_tokenizer_class=transformers.LongformerTokenizerFast,
        saved_options=lambda config: {"attention_window": config.attention_window},
        resize_fields=lambda config, max_length: {
            "max_position_embeddings": max_length + roberta_position_offset(config.pad_token_id)
        },
        exact_where="those that fit in one attention window",
    )
)
