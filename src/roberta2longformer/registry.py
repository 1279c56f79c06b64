"""Target specs and their registry: one small frozen declaration per long-context architecture."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from transformers import PretrainedConfig, PreTrainedModel

from .errors import ConversionError
from .sources import POSITION_KEY
from .weights import Rename


class Approximation(NamedTuple):
    """One length at which to measure an approximating attention, and how to run the model there."""

    length: int
    regime: str
    mode: contextlib.AbstractContextManager


class NewWeights(NamedTuple):
    """Weights a target needs that the source does not have, and what users must know about them."""

    tensors: dict[str, torch.Tensor]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class TargetSpec:
    """Everything that differs between targets; the conversion pipeline itself is shared.

    - ``config_class`` / ``model_classes``: the plain ``transformers`` classes, per head kind.
    - ``base_prefix``: the attribute holding the backbone in head models (``longformer``).
    - ``key_rules(prefix)``: renames from the canonical layout (see :mod:`.sources`) to the target;
      ``prefix`` is ``"longformer."`` for head models and ``""`` for the base model.
    - ``position_offset(config)``: rows before the first learned position row in the target.
    - ``config_overrides(source_config, max_length, options, special_ids)``: the fields the
      target changes or adds; everything else is carried from the source.
    - ``validate(max_length, options)``: raise :class:`ConversionError` for bad options.
    - ``exact_length(config)``: the longest input on which the target's attention can reproduce
      full attention (``None``: any length); ``verify`` also bounds it by both position tables.
    - ``extra_inputs(input_ids, global_first)``: target-only forward arguments used by ``verify``
      (e.g. Longformer's ``global_attention_mask``).
    - ``max_length(config)``: how many learned position rows a saved target has.
    - ``new_weights(config, prefix, state, generator, options)``: target weights with no source
      counterpart in the mapped ``state``, set so the model stays equivalent (e.g. Nyströmformer's
      zero convolution), with a note for each one that is not (seeded by ``generator``).
    - ``exact_mode(model, length)``: a context in which the model computes exactly, for ``verify``.
    - ``unsupported_heads``: head kind → why the target cannot reproduce it.
    - ``smoke_length(config)``: the input length of the full-length smoke forward.
    - ``approximation(model, source_positions)``: for targets that approximate attention, the
      lengths (≤ ``source_positions``) and regimes at which ``verify`` measures what the
      approximation costs against the source (reported, not checked).
    - ``lm_head_activation(config)``: the activation inside the target's masked-LM head.
    - ``field_map``: source config field → the target's name for it (``None``: not carried).
    - ``prepare_state(state, rebuild, config, max_length)``: puts the position table(s) into the
      canonical ``state``, with any other reshaping the target needs, and returns notes;
      ``rebuild(offset, length)`` gives the source's rows moved behind ``offset`` rows and extended
      to ``length``. Default: one table behind ``position_offset``.
    - ``source_notes(source_config)``: what the target cannot represent of this source's config.
    - ``compared_module(model)``: the part of a converted model that reproduces the source (the
      whole model by default; LED's encoder).
    - ``smoke_run(model, input_ids)``: what the full-length smoke run does (default: one forward).
    - ``position_key``: the learned position table, relative to the backbone (for ``resize``).
    - ``saved_options(config)``: the conversion options a saved model was made with.
    - ``resize_fields(config, max_length)``: the config fields that change when a saved model of
      this target is resized to ``max_length`` tokens.
    - ``training_advice``: what a converted model needs before it is useful (model card).
    - ``exact_where``: in words, the inputs on which the target reproduces its source (model card).
    - ``notice``: what every user of a converted model must know, written in its model card.
    """

    name: str
    config_class: type[PretrainedConfig]
    model_classes: Mapping[str, type[PreTrainedModel]]
    base_prefix: str
    key_rules: Callable[[str], tuple[Rename, ...]]
    position_offset: Callable[[PretrainedConfig], int]
    config_overrides: Callable[[PretrainedConfig, int, Mapping[str, Any], Mapping[str, Any]], dict]
    validate: Callable[[int, Mapping[str, Any]], None]
    exact_length: Callable[[PretrainedConfig], int | None]
    default_options: Mapping[str, Any]
    max_length: Callable[[PretrainedConfig], int]
    byte_level_tokenizer_class: type | None = None
    extra_inputs: Callable[[torch.Tensor, bool], dict[str, torch.Tensor]] = lambda input_ids, global_first: {}
    new_weights: Callable[..., NewWeights] = lambda config, prefix, state, generator, options: NewWeights({})
    exact_mode: Callable[[PreTrainedModel, int], contextlib.AbstractContextManager] = (
        lambda model, length: contextlib.nullcontext()
    )
    unsupported_heads: Mapping[str, str] = field(default_factory=dict)
    smoke_length: Callable[[PretrainedConfig], int] | None = None
    approximation: Callable[[PreTrainedModel, int], list[Approximation]] | None = None
    lm_head_activation: Callable[[PretrainedConfig], str] = lambda config: "gelu"
    field_map: Mapping[str, str | None] = field(default_factory=dict)
    prepare_state: Callable[..., list[str]] | None = None
    source_notes: Callable[[PretrainedConfig], list[str]] = lambda config: []
    compared_module: Callable[[PreTrainedModel], torch.nn.Module] | None = None
    smoke_run: Callable[[PreTrainedModel, torch.Tensor, Callable], dict[str, Any]] | None = None
    position_key: str = "embeddings.position_embeddings.weight"
    saved_options: Callable[[PretrainedConfig], dict[str, Any]] = lambda config: {}
    resize_fields: Callable[[PretrainedConfig, int], dict[str, Any]] = (
        lambda config, max_length: {"max_position_embeddings": max_length}
    )
    exact_where: str = "where its attention is exact"
    training_advice: str = (
        "continued masked-LM pretraining at the new length (the Longformer paper used a few thousand steps)"
    )
    notice: str = ""

    def prepare_canonical(
        self,
        state: dict[str, torch.Tensor],
        rebuild: Callable[[int, int], torch.Tensor],
        config: PretrainedConfig,
        max_length: int,
    ) -> list[str]:
        """Put the target's position table(s) into the canonical ``state``; return notes for the user."""
        if self.prepare_state is not None:
            return self.prepare_state(state, rebuild, config, max_length)
        state[POSITION_KEY] = rebuild(self.position_offset(config), max_length)
        return []

    def options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(given) - set(self.default_options))
        if unknown:
            raise ConversionError(
                f"Option(s) {', '.join(unknown)} do not apply to {self.name}; its options are "
                f"{', '.join(self.default_options)}."
            )
        return {**self.default_options, **{k: v for k, v in given.items() if v is not None}}


def no_equivalent_head(reason: str, head: str) -> str:
    """The refusal for a source head that a target's head class cannot reproduce."""
    return (
        f"{reason}, so a converted {head} head would not compute what the source's did; convert the "
        f"base or masked-LM model and train a fresh {head} head on it."
    )


_TARGETS: dict[str, TargetSpec] = {}


def register(spec: TargetSpec) -> TargetSpec:
    _TARGETS[spec.name] = spec
    return spec


def target_names() -> tuple[str, ...]:
    return tuple(_TARGETS)


def get_target(name: str) -> TargetSpec:
    try:
        return _TARGETS[name]
    except KeyError:
        raise ConversionError(
            f"Unknown target {name!r}; supported targets are {', '.join(_TARGETS)}."
        ) from None


def target_for_config(config: PretrainedConfig) -> TargetSpec:
    """The spec whose config class wrote ``config`` (used by ``verify`` on saved models)."""
    for spec in _TARGETS.values():
        if config.model_type == spec.config_class.model_type:
            return spec
    raise ConversionError(
        f"A {config.model_type!r} model is not one of our targets ({', '.join(_TARGETS)})."
    )
