"""The registry of targets, and the lookups every other layer asks: which target, and how long a model reads.

Declarations (one module per target) and lookups live apart: a target registers itself with
:func:`register` when its module is imported (``targets/__init__.py`` imports them all).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.families import family_for
from ..errors import ConversionError
from .base import Target, under_backbone

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

_TARGETS: dict[str, Target] = {}


def register(cls: type[Target]) -> type[Target]:
    """Class decorator: add one instance of ``cls`` to the registry under ``cls.name``."""
    _TARGETS[cls.name] = cls()
    return cls


def all_targets() -> tuple[Target, ...]:
    return tuple(_TARGETS.values())


def target_names() -> tuple[str, ...]:
    return tuple(_TARGETS)


def get_target(name: str) -> Target:
    try:
        return _TARGETS[name]
    except KeyError:
        raise ConversionError(f"Unknown target {name!r}; supported targets are {', '.join(_TARGETS)}.") from None


def target_for_config(config: PretrainedConfig) -> Target:
    """The target that made a saved model with ``config`` (verification and resize take saved models)."""
    target = target_or_none(config)
    if target is None:
        raise ConversionError(f"A {config.model_type!r} model is not one of our targets ({', '.join(_TARGETS)}).")
    return target


def target_or_none(config: PretrainedConfig) -> Target | None:
    """The target of a saved model (bound to its config), or ``None`` for a source (a short encoder)."""
    return next((t.for_source(config) for t in _TARGETS.values() if t.matches(config)), None)


def readable_length(config: PretrainedConfig) -> int:
    """How many tokens a model reads: a long model's length (one of our targets), or a source's learned
    positions (its table less the offset rows)."""
    target = target_or_none(config)
    return target.max_length(config) if target is not None else family_for(config).source_length(config)


def input_length(config: PretrainedConfig) -> int:
    """The length a model is run at for one full-length input: what it reads, or for a target with a fixed
    input length (a Nyströmformer), exactly that length."""
    target = target_or_none(config)
    return target.input_length(config) if target is not None else family_for(config).source_length(config)


def position_table(model: PreTrainedModel) -> tuple[str, int]:
    """The state-dict key of ``model``'s learned position table (its encoder's, for an encoder-decoder), and
    how many offset rows come before its first position."""
    target = target_or_none(model.config)
    if target is not None:
        return target.position_parameter_name(model), target.position_offset(model.config)
    family = family_for(model.config)
    return under_backbone(model, family.position_key), family.position_offset(model.config)


def prepare_attention(model: PreTrainedModel, fast_attention: bool) -> PreTrainedModel:
    """``model`` ready to read inputs of any length, as every command runs it: the fast backend where it
    applies and is ``wanted`` (:func:`~roberta2longformer.fast.enable_if`), and its target's attention
    chosen for each input afresh (:meth:`Target.choose_attention_per_input`)."""
    from ..fast import enable_if  # imports torch: not when the command line only reads the targets

    enable_if(model, fast_attention)
    target = target_or_none(model.config)
    if target is not None:
        target.choose_attention_per_input(model)
    return model
