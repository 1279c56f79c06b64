"""ELECTRA: BERT's layout without a pooler; its generator's masked-LM head is RoBERTa's in other names."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import ConversionError
from ..keys import kept, module_renames
from .base import SourceFamily, no_equivalent

if TYPE_CHECKING:
    from transformers import PretrainedConfig


def check_embeddings(config: PretrainedConfig) -> None:
    embedding, hidden = getattr(config, "embedding_size", config.hidden_size), config.hidden_size
    if embedding != hidden:
        raise ConversionError(
            f"This ELECTRA's embeddings have {embedding} dimensions and its layers {hidden}; it projects between "
            "them (embeddings_project), which no long target has a place for, so only ELECTRAs whose "
            "embedding_size equals hidden_size convert (most discriminators; generators usually differ)."
        )


ELECTRA = SourceFamily(
    name="ELECTRA",
    model_types=("electra",),
    prefix="electra",
    position_offset=lambda config: 0,  # numbered from 0, as BERT
    head_rules={
        # The generator's head: dense -> gelu -> LayerNorm -> tied decoder, as RoBERTa's lm_head.
        "masked_lm": module_renames(
            {
                "generator_predictions.dense": "lm_head.dense",
                "generator_predictions.LayerNorm": "lm_head.layer_norm",
                "generator_lm_head.weight": "lm_head.decoder.weight",
                "generator_lm_head.bias": "lm_head.bias",
            }
        ),
        "token_classification": kept("classifier"),
        "question_answering": kept("qa_outputs"),
    },
    pooler=False,
    refused_heads={
        "sequence_classification": no_equivalent(
            "sequence-classification", "ELECTRA's classification head applies gelu where the targets' apply tanh"
        ),
        "multiple_choice": no_equivalent(
            "multiple-choice", "ELECTRA scores choices through a sequence summary that the targets do not have"
        ),
    },
    check_config=check_embeddings,
)
