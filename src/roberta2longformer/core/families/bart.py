"""BART, an encoder-decoder: converts only to LED (BART with Longformer self-attention in its encoder).

Its embeddings and both position tables take their canonical names; every other module goes under
``s2s.`` with LED's names, so that LED takes the decoder as it is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ...errors import ConversionError
from ..keys import Rename, rename
from ..vocabulary import BART_STYLE_FIELDS, DECODER_POSITION_KEY, POSITION_KEY, SEQ2SEQ_PREFIX
from .base import SourceFamily, linear_or_norm

if TYPE_CHECKING:
    from transformers import PretrainedConfig

#: BART module (under ``encoder.layers.N.``) → its LED name; the others keep theirs.
ENCODER_ATTENTION = {
    "self_attn.q_proj": "self_attn.longformer_self_attn.query",
    "self_attn.k_proj": "self_attn.longformer_self_attn.key",
    "self_attn.v_proj": "self_attn.longformer_self_attn.value",
    "self_attn.out_proj": "self_attn.output",
}
LAYER_MODULES = ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm")
CROSS_MODULES = ("encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
                 "encoder_attn_layer_norm")  # fmt: skip
DECODER_ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")


def _rules() -> tuple[Rename, ...]:
    """BART's keys (``model.`` in head models) → canonical: the embeddings and both position tables under
    their canonical names, every other module under ``s2s.`` with LED's names; tied copies dropped."""
    model, s2s = r"(?:model\.)?", SEQ2SEQ_PREFIX
    layer = r"\.layers\.(?P<i>\d+)\."
    return (
        rename(model + r"shared\.weight", "base.embeddings.word_embeddings.weight"),
        rename(model + r"(?:encoder|decoder)\.embed_tokens\.weight"),  # tied to shared
        rename(r"lm_head\.weight"),  # tied to shared
        rename(model + r"encoder\.embed_positions\.weight", POSITION_KEY),
        rename(model + r"decoder\.embed_positions\.weight", DECODER_POSITION_KEY),
        rename(model + r"(?P<part>encoder|decoder)\.layernorm_embedding\.(?P<t>\w+)", s2s + r"\g<part>.layernorm_embedding.\g<t>"),
        *(
            rename(model + r"encoder" + layer + re.escape(bart) + r"\.(?P<t>\w+)", s2s + rf"encoder.layers.\g<i>.{led}.\g<t>")
            for bart, led in ENCODER_ATTENTION.items()
        ),
        rename(
            model + r"(?P<part>encoder|decoder)" + layer + rf"(?P<m>{'|'.join(map(re.escape, LAYER_MODULES))})\.(?P<t>\w+)",
            s2s + r"\g<part>.layers.\g<i>.\g<m>.\g<t>",
        ),
        rename(
            model + r"decoder" + layer
            + rf"(?P<m>{'|'.join(map(re.escape, (*DECODER_ATTENTION, *CROSS_MODULES)))})\.(?P<t>\w+)",
            s2s + r"decoder.layers.\g<i>.\g<m>.\g<t>",
        ),
        rename(r"final_logits_bias", "final_logits_bias"),
    )  # fmt: skip


def layout(config: PretrainedConfig, head: str) -> dict[str, tuple[int, ...]]:
    """What ``save_pretrained`` writes for a BART (canonical names; ``config`` canonical: its
    ``max_position_embeddings`` counts the table's two offset rows)."""
    d, vocab, rows = config.d_model, config.vocab_size, config.max_position_embeddings
    weights = {
        "base.embeddings.word_embeddings.weight": (vocab, d),
        POSITION_KEY: (rows, d),
        DECODER_POSITION_KEY: (rows, d),
    }
    for part, layers, inner in (("encoder", config.encoder_layers, config.encoder_ffn_dim),
                                ("decoder", config.decoder_layers, config.decoder_ffn_dim)):  # fmt: skip
        weights.update(linear_or_norm(f"{SEQ2SEQ_PREFIX}{part}.layernorm_embedding", d))
        attention = ENCODER_ATTENTION.values() if part == "encoder" else (*DECODER_ATTENTION, *CROSS_MODULES[:4])
        norms = (
            "self_attn_layer_norm",
            "final_layer_norm",
            *(("encoder_attn_layer_norm",) if part == "decoder" else ()),
        )
        for i in range(layers):
            layer = f"{SEQ2SEQ_PREFIX}{part}.layers.{i}."
            for module in attention:
                weights.update(linear_or_norm(layer + module, d, d))
            for module in norms:
                weights.update(linear_or_norm(layer + module, d))
            weights.update(linear_or_norm(layer + "fc1", inner, d))
            weights.update(linear_or_norm(layer + "fc2", d, inner))
    if head == "conditional_generation":
        weights["final_logits_bias"] = (1, vocab)
    return weights


def check_embeddings(config: PretrainedConfig) -> None:
    if getattr(config, "scale_embedding", False):
        raise ConversionError(
            "This BART scales its token embeddings by sqrt(d_model) (scale_embedding), which LED does not, so an "
            "LED cannot reproduce it; only BARTs with scale_embedding=False (facebook/bart-base, -large) convert."
        )


BART = SourceFamily(
    name="BART",
    model_types=("bart",),
    prefix="model",
    # Its tables hold two rows before position 0 (BartLearnedPositionalEmbedding's offset), whatever the padding.
    position_offset=lambda config: 2,
    head_rules={head: _rules() for head in ("seq2seq_base", "conditional_generation")},
    converts_to=lambda target: target.is_encoder_decoder,
    targets_hint="LED is BART with Longformer self-attention in its encoder (--to led).",
    config_aliases=BART_STYLE_FIELDS,
    config_constants={"type_vocab_size": 1, "layer_norm_eps": 1e-5},  # nn.LayerNorm's default, as LED's
    config_derived=lambda config: {"max_position_embeddings": config.max_position_embeddings + 2},
    token_types=False,
    pooler=False,
    check_config=check_embeddings,
    layout=layout,
    is_encoder_decoder=True,
    class_prefix="Bart",
    position_key="encoder.embed_positions.weight",
)
