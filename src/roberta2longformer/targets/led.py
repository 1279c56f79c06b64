"""RoBERTa-family or Longformer → LED (Longformer Encoder-Decoder); a BART → LED (its decoder carried too).

The "leveraging pre-trained checkpoints" recipe (Rothe et al., 2020): encoder *and* decoder start
from the pretrained encoder's layers, and only the decoder's cross-attention is new.

What makes the LED **encoder** reproduce the source:

- Its layers are Longformer layers under BART names (``self_attn.longformer_self_attn.query``,
  ``fc1``, ``self_attn_layer_norm``…); the global projections come from a Longformer source or
  start as copies of the local ones.
- LED has no token-type embeddings and numbers positions from 0. RoBERTa adds token-type row 0 to
  every token, so that row is folded into the position rows (``position[i] + type[0]``), and the
  learned rows lose RoBERTa's two offset rows. Inputs must therefore not use other token types.
- LED's layer norms have a fixed epsilon of 1e-5. RoBERTa, XLM-R and CamemBERT checkpoints use
  1e-5; a source with another epsilon (BERT's 1e-12) is refused, because no weights can make up
  for it (see :func:`_check_layer_norm_eps`).

The decoder gets the same layers (self-attention, feed-forward, layer norms) and the folded
positions up to ``decoder_max_length``; its cross-attention starts random or as a copy of each
layer's self-attention (``cross_attention_init``). LED's LM head is the tied embedding matrix plus
``final_logits_bias``: a masked-LM source gives its output bias; its transform (dense + gelu +
layer norm) has no place, which the notes and model card say.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.families import family_for
from ..core.keys import Rename, rename
from ..core.vocabulary import (
    BART_STYLE_FIELDS,
    DECODER_POSITION_KEY,
    POSITION_KEY,
    SEQ2SEQ_PREFIX,
    TOKEN_TYPE_KEY,
)
from ..errors import ConversionError, require_positive_int
from .base import NewWeights, Option, Target, seq2seq_smoke_run
from .longformer import (
    ATTENTION_WINDOW,
    attention_windows,
    global_first_token,
    one_window,
    per_layer_windows,
    window_multiple,
)
from .registry import register

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

    from .base import Config, Generator, MutableState, Options, Rebuild, State

LED_LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default, which every LED layer norm uses
CROSS_ATTENTION_INITS = ("random", "self")
DECODER_MAX_LENGTH = Option(
    "decoder_max_length",
    int,
    None,
    "Longest output the decoder reads, in tokens.",
    default_text="a BART's own decoder length, else 1024",
)
#: The decoder's length for an encoder source, which has no decoder of its own.
ENCODER_SOURCE_DECODER_LENGTH = 1024
CROSS_ATTENTION_INIT = Option(
    "cross_attention_init",
    str,
    "random",
    "Start the decoder's cross-attention random or as a copy of its self-attention.",
    choices=CROSS_ATTENTION_INITS,
)

_LAYER = r"base\.encoder\.layer\.(?P<i>\d+)\."
#: Source module (under the layer) → (encoder module, decoder module) under ``layers.N.``.
_LAYER_MODULES: dict[str, tuple[str, str]] = {
    r"attention\.self\.query": ("self_attn.longformer_self_attn.query", "self_attn.q_proj"),
    r"attention\.self\.key": ("self_attn.longformer_self_attn.key", "self_attn.k_proj"),
    r"attention\.self\.value": ("self_attn.longformer_self_attn.value", "self_attn.v_proj"),
    r"attention\.output\.dense": ("self_attn.output", "self_attn.out_proj"),
    r"attention\.output\.LayerNorm": ("self_attn_layer_norm", "self_attn_layer_norm"),
    r"intermediate\.dense": ("fc1", "fc1"),
    r"output\.dense": ("fc2", "fc2"),
    r"output\.LayerNorm": ("final_layer_norm", "final_layer_norm"),
}
_CROSS_FROM_SELF = {
    "encoder_attn.q_proj": "self_attn.q_proj",
    "encoder_attn.k_proj": "self_attn.k_proj",
    "encoder_attn.v_proj": "self_attn.v_proj",
    "encoder_attn.out_proj": "self_attn.out_proj",
    "encoder_attn_layer_norm": "self_attn_layer_norm",
}


#: Source config fields under LED's names; ``None``: LED has no such field.
_FIELD_MAP: dict[str, str | None] = {
    **BART_STYLE_FIELDS,
    "type_vocab_size": None,
    "layer_norm_eps": None,
    "tie_word_embeddings": None,
}


def _check_layer_norm_eps(source: PretrainedConfig) -> None:
    """LED's layer norms have a fixed epsilon; a source with another one cannot be reproduced.

    Measured by scripts/measure_led_eps.py: all-MiniLM-L6-v2 (a BERT, eps 1e-12) → LED differs by
    1.3e-2 in the encoder's last hidden state, and by 3.6e-6 once the epsilon is patched.
    """
    if abs(source.layer_norm_eps - LED_LAYER_NORM_EPS) > 1e-12:
        raise ConversionError(
            f"LED's layer norms have a fixed eps of {LED_LAYER_NORM_EPS:g} but the source's is "
            f"{source.layer_norm_eps:g} (BERT's default), which changes every hidden state (by 1.3e-2 on "
            "all-MiniLM-L6-v2), so an LED cannot reproduce this source; use a RoBERTa-family source "
            "(eps 1e-5) for LED, or the longformer target."
        )


def _fresh(module: str, kind: str, like: torch.Tensor, std: float, generator: torch.Generator) -> torch.Tensor:
    """What ``transformers`` would draw for a new module: normal linear weights, zero biases, unit norms."""
    import torch  # not at import: the command line reads the targets before it needs torch

    if module.endswith("layer_norm"):
        return torch.ones_like(like) if kind == "weight" else torch.zeros_like(like)
    if kind == "bias":
        return torch.zeros_like(like)
    return torch.empty(like.shape).normal_(0.0, std, generator=generator).to(like.dtype)


@register
class LED(Target):
    name = "led"
    title = "LED"
    config_class_name = "LEDConfig"
    model_type = "led"
    model_class_names = {
        "base": "LEDForConditionalGeneration",
        "masked_lm": "LEDForConditionalGeneration",
        "conditional_generation": "LEDForConditionalGeneration",  # from a BART
        "seq2seq_base": "LEDModel",  # from a BartModel
    }
    base_prefix = "led"
    byte_level_tokenizer_name = "LEDTokenizerFast"
    options = (ATTENTION_WINDOW, DECODER_MAX_LENGTH, CROSS_ATTENTION_INIT)
    field_map = _FIELD_MAP
    position_key = "encoder.embed_positions.weight"
    is_encoder_decoder = True
    uses_global_tokens = True
    has_fast_attention = True
    training_advice = (
        "fine-tuning on a long-document generation task (summarisation, for example): converted from an "
        "encoder, its cross-attention is new and its decoder has never generated; from a BART, its encoder "
        "has never read past the source's length"
    )
    exact_where = "those that fit in one attention window; compared: the encoder's hidden states"

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        encoder, decoder = rf"{prefix}encoder.layers.\g<i>.", rf"{prefix}decoder.layers.\g<i>."
        return (
            rename(
                _LAYER + r"attention\.self\.(?P<p>query|key|value)_global\.(?P<t>\w+)",
                encoder + r"self_attn.longformer_self_attn.\g<p>_global.\g<t>",
            ),
            *(
                rename(_LAYER + source + r"\.(?P<t>\w+)", f"{encoder}{enc}.\\g<t>", f"{decoder}{dec}.\\g<t>")
                for source, (enc, dec) in _LAYER_MODULES.items()
            ),
            rename(r"base\.embeddings\.word_embeddings\.weight", f"{prefix}shared.weight"),
            rename(re.escape(POSITION_KEY), f"{prefix}encoder.embed_positions.weight"),
            rename(re.escape(DECODER_POSITION_KEY), f"{prefix}decoder.embed_positions.weight"),
            rename(
                r"base\.embeddings\.LayerNorm\.(?P<t>\w+)",
                rf"{prefix}encoder.layernorm_embedding.\g<t>",
                rf"{prefix}decoder.layernorm_embedding.\g<t>",
            ),
            rename(r"final_logits_bias", "final_logits_bias"),
            # A BART's modules, already under LED's names.
            rename(re.escape(SEQ2SEQ_PREFIX) + r"(?P<k>.+)", rf"{prefix}\g<k>"),
            rename(r"base\.pooler\..+"),  # LED has no pooler: dropped, and said so
            rename(r"lm_head\..+"),  # the transform; the tied decoder is LED's shared embedding
        )

    def validate(self, max_length: int, options: Mapping[str, Any]) -> None:
        windows = attention_windows(options["attention_window"])
        if max_length % max(windows):
            raise ConversionError(
                f"--max-length ({max_length}) must be a multiple of --attention-window ({max(windows)}), because LED "
                f"pads every input to whole windows; choose e.g. {max_length - max_length % max(windows) or max(windows)}."
            )
        if options["decoder_max_length"] is not None:
            require_positive_int("--decoder-max-length", options["decoder_max_length"], "1024 tokens")
        if options["cross_attention_init"] not in CROSS_ATTENTION_INITS:
            raise ConversionError(
                f"Unknown --cross-attention-init {options['cross_attention_init']!r}; choose one of "
                f"{', '.join(CROSS_ATTENTION_INITS)}."
            )
        super().validate(max_length, options)

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        _check_layer_norm_eps(source)
        if getattr(source, "is_encoder_decoder", False):
            return self._seq2seq_overrides(source, max_length, options)
        bos, eos = special.get("bos_token_id"), special.get("eos_token_id")
        if bos is None or eos is None:
            raise ConversionError(
                "LED needs start and end token ids to generate and the source config has none; pass the "
                "source's tokenizer (its CLS/BOS and SEP/EOS tokens are used)."
            )
        return {
            "max_encoder_position_embeddings": max_length,
            "max_decoder_position_embeddings": options["decoder_max_length"] or ENCODER_SOURCE_DECODER_LENGTH,
            "decoder_layers": source.num_hidden_layers,
            "decoder_attention_heads": source.num_attention_heads,
            "decoder_ffn_dim": source.intermediate_size,
            "attention_window": per_layer_windows(options["attention_window"], source.num_hidden_layers),
            "activation_dropout": 0.0,  # the source has no dropout inside its feed-forward block
            "bos_token_id": bos,
            "eos_token_id": eos,
            # The decoder starts from encoder layers that always saw <s>/[CLS] first.
            "decoder_start_token_id": bos,
            "tie_word_embeddings": True,
        }

    def _seq2seq_overrides(self, source: Config, max_length: int, options: Options) -> dict[str, Any]:
        """A BART: its decoder's own sizes and ids; its decoder keeps (at most) its length."""
        decoder_rows = family_for(source).source_length(source)  # BART's decoder table is as long as its encoder's
        decoder_length = options["decoder_max_length"] or decoder_rows
        if decoder_length > decoder_rows:
            raise ConversionError(
                f"--decoder-max-length {decoder_length} is beyond the BART decoder's {decoder_rows} positions; "
                f"give at most {decoder_rows} (only the encoder is made long)."
            )
        return {
            "max_encoder_position_embeddings": max_length,
            "max_decoder_position_embeddings": decoder_length,
            "attention_window": per_layer_windows(options["attention_window"], source.encoder_layers),
            **{
                name: getattr(source, name)
                for name in (
                    "decoder_layers",
                    "decoder_attention_heads",
                    "decoder_ffn_dim",
                    "activation_dropout",
                    "decoder_start_token_id",
                    "bos_token_id",
                    "eos_token_id",
                    "encoder_layerdrop",
                    "decoder_layerdrop",
                    "classifier_dropout",
                )  # fmt: skip
            },
            "tie_word_embeddings": True,
        }

    def source_notes(self, source: PretrainedConfig) -> list[str]:
        notes = []
        if getattr(source, "type_vocab_size", 1) > 1:
            notes.append(
                f"LED has no token types: token-type row 0 is folded into the position rows and the other "
                f"{source.type_vocab_size - 1} row(s) are dropped, so inputs must not use token_type_ids."
            )
        return notes

    def prepare_canonical(self, state: MutableState, rebuild: Rebuild, config: Config, max_length: int) -> list[str]:
        """Fold token-type row 0 into both position tables (LED numbers from 0); move the LM bias."""
        type_row = state.pop(TOKEN_TYPE_KEY)[0]
        state[POSITION_KEY] = rebuild(0, max_length) + type_row
        own_decoder = state.get(DECODER_POSITION_KEY)  # a BART's; an encoder's decoder starts from its positions
        state[DECODER_POSITION_KEY] = rebuild(0, config.max_decoder_position_embeddings, own_decoder) + type_row
        notes = []
        if "lm_head.bias" in state:
            state["final_logits_bias"] = state.pop("lm_head.bias").unsqueeze(0)
            notes.append(
                "LED's LM head is the tied embedding matrix plus final_logits_bias: the source's output bias "
                "became final_logits_bias, and its transform (dense + gelu + layer norm) has no place in LED."
            )
        return notes

    def new_weights(
        self, config: Config, prefix: str, state: State, generator: Generator, options: Options
    ) -> NewWeights:
        """Global projections (from a Longformer source, else copies of the local ones) and cross-attention."""
        import torch  # not at import: the command line reads the targets before it needs torch

        tensors: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            match = re.fullmatch(r"(.+\.longformer_self_attn\.)(query|key|value)(\.\w+)", key)
            if match and (global_key := f"{match[1]}{match[2]}_global{match[3]}") not in state:
                tensors[global_key] = tensor
        init = options["cross_attention_init"]
        carried = f"{prefix}decoder.layers.0.encoder_attn.q_proj.weight" in state  # a BART's own
        for i in range(0 if carried else config.decoder_layers):
            layer = f"{prefix}decoder.layers.{i}."
            for cross, self_module in _CROSS_FROM_SELF.items():
                for kind in ("weight", "bias"):
                    source = state[f"{layer}{self_module}.{kind}"]
                    tensors[f"{layer}{cross}.{kind}"] = (
                        source.clone() if init == "self" else _fresh(cross, kind, source, config.init_std, generator)
                    )
        if prefix and "final_logits_bias" not in state:  # LEDModel (no prefix) has no LM head
            tensors["final_logits_bias"] = torch.zeros(1, config.vocab_size, dtype=config.dtype)
        described = (
            "copies of each layer's self-attention" if init == "self" else "random (seeded, normal(0, init_std))"
        )
        note = (
            f"The decoder's cross-attention starts as {described} (cross_attention_init={init!r}); "
            "the encoder-decoder must be fine-tuned before it generates anything useful."
        )
        return NewWeights(tensors, () if carried else (note,))

    def max_length(self, config: PretrainedConfig) -> int:
        return config.max_encoder_position_embeddings

    def saved_options(self, config: PretrainedConfig) -> dict[str, Any]:
        return {
            "attention_window": config.attention_window,
            "decoder_max_length": config.max_decoder_position_embeddings,
        }

    def resize_fields(self, config: PretrainedConfig, max_length: int) -> dict[str, Any]:
        return {"max_encoder_position_embeddings": max_length}

    def exact_length(self, config: PretrainedConfig) -> int:
        return one_window(config)

    def extra_inputs(self, input_ids: torch.Tensor, global_first: bool) -> dict[str, torch.Tensor]:
        return global_first_token(input_ids, global_first)

    def compared_module(self, model: PreTrainedModel) -> torch.nn.Module:
        return model.get_encoder()

    def input_multiple(self, config: PretrainedConfig) -> int:
        return window_multiple(config)

    def smoke_run(self, model: PreTrainedModel, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        return seq2seq_smoke_run(model, {**inputs, **self.extra_inputs(inputs["input_ids"], True)})
