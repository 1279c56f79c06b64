"""Full attention, longer positions: the source's own class with a longer position table.

Most long encoders since SDPA and FlashAttention keep full attention and only lengthen the learned
position table (BGE-M3 is a plain ``XLMRobertaModel`` with 8194 positions, LongEmbed's E5-Base-4k a
plain ``BertModel`` with 4096). This target makes that model from any source we take: the same class
(``RobertaForMaskedLM`` stays ``RobertaForMaskedLM``), every weight under its own name, the config
with ``max_position_embeddings`` raised (both tables of a BART, which one field sizes), the new rows
filled by ``position_init``. Nothing in the computation changes but the table, so the model equals its
source on *every* input the source could read (all lengths up to its limit), which ``verify`` checks
at the source's full length; attention is the source's (SDPA by default), quadratic in the length.

A saved model of this target is recognised by the ``roberta2longformer`` field its config carries
(``{"target": "extended"}``): its ``model_type`` is the source's own.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.families import family_for
from ..core.keys import Rename, rename
from ..core.vocabulary import DECODER_POSITION_KEY, POSITION_KEY, TOKEN_TYPE_KEY, class_suffix
from ..errors import ConversionError
from .base import Target, seq2seq_smoke_run, under_backbone
from .registry import register

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

    from .base import Config, MutableState, Options, Rebuild

#: The config field that marks a model this target made (its ``model_type`` is the source's).
MARK = "roberta2longformer"
#: Heads a source may have: the output keeps the source's own class, whatever its head.
ENCODER_HEADS = (
    "base",
    "masked_lm",
    "sequence_classification",
    "token_classification",
    "question_answering",
    "multiple_choice",
)


@register
class Extended(Target):
    name = "extended"
    title = "full attention, longer positions"
    # Placeholders of the unbound target (the command line's choices); ``for_source`` binds the source's own.
    config_class_name = "PretrainedConfig"
    model_type = ""
    model_class_names = {head: f"the source's own{class_suffix(head)} class" for head in ENCODER_HEADS}
    base_prefix = ""
    exact_where = "every input the source could read (attention is unchanged)"
    training_advice = (
        "continued masked-LM pretraining at the new length (as BGE-M3 did: 20k RetroMAE steps at 8192 tokens), "
        "or for an embedder, training only the rows beyond the source's length (finetune --task embedding "
        "--only-positions-beyond N)"
    )

    #: Bound to one source (or saved model): its config, its stored key per canonical key, its family.
    config: PretrainedConfig | None = None
    names: Mapping[str, str] = {}

    def matches(self, config: PretrainedConfig) -> bool:
        return (getattr(config, MARK, None) or {}).get("target") == self.name

    def for_source(self, config: PretrainedConfig, names: Mapping[str, str] | None = None) -> Extended:
        """This target bound to ``config``: the source's classes, key names, position offset and tables."""
        family = family_for(config)
        bound = copy.copy(self)
        prefix = type(config).__name__.removesuffix("Config")
        bound.config, bound.names = config, dict(names or {})
        bound.config_class_name, bound.model_type, bound.base_prefix = (
            type(config).__name__,
            config.model_type,
            family.prefix,
        )
        heads = ("seq2seq_base", "conditional_generation") if family.is_encoder_decoder else ENCODER_HEADS
        bound.model_class_names = {head: prefix + class_suffix(head) for head in heads}
        bound.position_key = family.position_key
        bound.is_encoder_decoder = family.is_encoder_decoder
        return bound

    # ------------------------------------------------------------------------------- mapping

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        """Each canonical key back to the name the source stored it under."""
        return tuple(rename(re.escape(canonical), stored) for canonical, stored in self.names.items())

    def position_offset(self, config: PretrainedConfig) -> int:
        return family_for(config).position_offset(config)

    def prepare_canonical(self, state: MutableState, rebuild: Rebuild, config: Config, max_length: int) -> list[str]:
        """Both tables (a BART's decoder's too) rebuilt behind the family's own offset rows; the token-type row
        the canonical layout adds to a family without token types goes again."""
        offset = self.position_offset(self.config)
        state[POSITION_KEY] = rebuild(offset, max_length)
        if DECODER_POSITION_KEY in state:
            state[DECODER_POSITION_KEY] = rebuild(offset, max_length, state[DECODER_POSITION_KEY])
        if TOKEN_TYPE_KEY not in self.names:
            state.pop(TOKEN_TYPE_KEY, None)
        if getattr(self.config, "sinusoidal_pos_embds", False):
            state[POSITION_KEY] = sinusoids(max_length, state[POSITION_KEY].shape[1], state[POSITION_KEY].dtype)
            return [
                "The source's positions are fixed sinusoids (sinusoidal_pos_embds); the longer table holds the same "
                "sinusoids for every position (position_init does not apply), so the model stays exact at any length."
            ]
        return []

    # -------------------------------------------------------------------------------- config

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        readable = self.max_length(self.config)
        if max_length < readable:
            raise ConversionError(
                f"--max-length {max_length} is shorter than the {readable} positions the source reads; --to extended "
                "only lengthens (to shorten a model made by it, resize it: roberta2longformer resize)."
            )
        return self.resize_fields(self.config, max_length)

    def derive_config(self, canonical: Config, overrides: Options, dtype: Any) -> PretrainedConfig:
        """The source's own config (every field, its class), with the longer table and this target's mark."""
        config = copy.deepcopy(self.config)
        for name, value in overrides.items():
            setattr(config, name, value)
        setattr(config, MARK, {"target": self.name})
        config.dtype = dtype
        return config

    def max_length(self, config: PretrainedConfig) -> int:
        return family_for(config).source_length(config)

    def resize_fields(self, config: PretrainedConfig, max_length: int) -> dict[str, Any]:
        """``max_position_embeddings`` as the family counts it: with its offset rows, less the rows its canonical
        view adds itself (a BART's field counts positions, its tables two more rows)."""
        family = family_for(config)
        added = family.canonical_config(config).max_position_embeddings - config.max_position_embeddings
        return {"max_position_embeddings": max_length + family.position_offset(config) - added}

    def position_parameter_names(self, model: PreTrainedModel) -> list[str]:
        keys = [self.position_parameter_name(model)]
        if self.is_encoder_decoder:
            keys.append(under_backbone(model, DECODER_POSITION_KEY))
        return keys

    def compared_module(self, model: PreTrainedModel) -> Any:
        """An encoder-decoder's encoder (its decoder's table is proven row by row with the weights)."""
        return model.get_encoder() if self.is_encoder_decoder else model

    def smoke_run(self, model: PreTrainedModel, inputs: dict[str, Any]) -> dict[str, Any]:
        return seq2seq_smoke_run(model, inputs) if self.is_encoder_decoder else super().smoke_run(model, inputs)

    def lm_head_activation(self, config: PretrainedConfig) -> str:
        """The source's own head, whatever activation it applies."""
        return family_for(config).lm_head_activation(config)


def sinusoids(length: int, dim: int, dtype: Any) -> Any:
    """DistilBERT's fixed position table (``create_sinusoidal_embeddings``): sin on even, cos on odd columns."""
    import torch  # not at import: the command line reads the targets before it needs torch

    positions = torch.arange(length, dtype=torch.float64)[:, None]
    rates = torch.pow(10000.0, -2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim)
    angles = positions * rates
    table = torch.empty(length, dim, dtype=torch.float64)
    table[:, 0::2], table[:, 1::2] = torch.sin(angles[:, 0::2]), torch.cos(angles[:, 1::2])
    return table.to(dtype)
