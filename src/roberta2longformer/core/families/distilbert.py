"""DistilBERT: its own layer and config names, no token types, no pooler, and (optionally) sinusoidal
positions, which the converted model keeps as the first rows of a learned table."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..keys import Rename, kept, module_renames, rename
from .base import SourceFamily, no_equivalent

if TYPE_CHECKING:
    from transformers import PretrainedConfig


def sinusoidal_note(config: PretrainedConfig) -> list[str]:
    if not getattr(config, "sinusoidal_pos_embds", False):
        return []
    return [
        "The source's positions are fixed sinusoids (sinusoidal_pos_embds); the converted model's are a learned "
        "table whose first rows are those sinusoids and whose new rows follow position_init, all trainable."
    ]


def _layer(pattern: str, canonical: str) -> Rename:
    return rename(
        rf"(?:distilbert\.)?transformer\.layer\.(?P<i>\d+)\.{pattern}\.(?P<t>\w+)",
        rf"base.encoder.layer.\g<i>.{canonical}.\g<t>",
    )


LAYERS = (
    _layer("attention\\.q_lin", "attention.self.query"),
    _layer("attention\\.k_lin", "attention.self.key"),
    _layer("attention\\.v_lin", "attention.self.value"),
    _layer("attention\\.out_lin", "attention.output.dense"),
    _layer("sa_layer_norm", "attention.output.LayerNorm"),
    _layer("ffn\\.lin1", "intermediate.dense"),
    _layer("ffn\\.lin2", "output.dense"),
    _layer("output_layer_norm", "output.LayerNorm"),
)

DISTILBERT = SourceFamily(
    name="DistilBERT",
    model_types=("distilbert",),
    prefix="distilbert",
    position_offset=lambda config: 0,
    lm_head_activation=lambda config: config.activation,
    layer_rules=LAYERS,
    head_rules={
        "masked_lm": module_renames(
            {
                "vocab_transform": "lm_head.dense",
                "vocab_layer_norm": "lm_head.layer_norm",
                "vocab_projector.weight": "lm_head.decoder.weight",
                "vocab_projector.bias": "lm_head.bias",
            }
        ),
        "token_classification": kept("classifier"),
        "question_answering": kept("qa_outputs"),
    },
    config_aliases={
        "intermediate_size": "hidden_dim",
        "hidden_act": "activation",
        "hidden_dropout_prob": "dropout",
        "attention_probs_dropout_prob": "attention_dropout",
    },
    config_constants={"type_vocab_size": 1, "layer_norm_eps": 1e-12},  # its LayerNorms are built with 1e-12
    token_types=False,
    pooler=False,
    refused_heads={
        head: no_equivalent(words, "DistilBERT's head applies ReLU on pre_classifier where the targets' apply tanh")
        for head, words in (
            ("sequence_classification", "sequence-classification"),
            ("multiple_choice", "multiple-choice"),
        )
    },
    notes=sinusoidal_note,
)
