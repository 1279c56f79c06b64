"""Give an existing long model (Longformer, BigBird, Nyströmformer, LED) a longer or shorter reach.

Only the learned position table and the config fields that name its length change: the rows the
model already has are kept (the first ``max_length`` of them when shrinking), new rows are filled
by ``position_init``, and every other weight is copied as it is. The result therefore computes
exactly what the original computed on every input both can read, which ``verify`` checks.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..errors import ConversionError, require_positive_int
from ..targets import Target, target_for_config
from .convert import Conversion, instantiate_without_init
from .keys import load_checked
from .loading import load_model, load_tokenizer
from .positions import check_position_init, rebuild_position_table
from .tokenizer import convert_tokenizer


def resize(
    model: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    max_length: int = 8192,
    *,
    position_init: str = "tile",
    seed: int = 0,
) -> Conversion:
    """Resize a long model of one of our targets (object or directory) to ``max_length`` tokens."""
    started = time.perf_counter()
    name = model if isinstance(model, (str, Path)) else getattr(model, "name_or_path", "")
    if isinstance(model, (str, Path)):
        if tokenizer is None:
            tokenizer = load_tokenizer(model)
        model = load_model(model)
    elif not isinstance(model, PreTrainedModel):
        raise ConversionError(f"Expected a transformers model or a directory to resize, got {type(model).__name__}.")
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    require_positive_int("max_length", max_length, "8192 tokens")
    check_position_init(position_init)
    target = _target_of(model)

    config = copy.deepcopy(model.config)
    for field_name, value in target.resize_fields(model.config, max_length).items():
        setattr(config, field_name, value)
    options = {**target.default_options(), **target.saved_options(config), "position_init": position_init}
    target.validate(max_length, options)

    state = dict(model.state_dict())
    key = _position_key(model, target)
    offset = target.position_offset(model.config)
    state[key] = rebuild_position_table(
        state[key],
        source_offset=offset,
        target_offset=offset,
        max_length=max_length,
        init=position_init,
        std=_initializer_range(model.config),
        generator=torch.Generator().manual_seed(seed),
    )
    resized = _same_class(model, config)
    load_checked(resized, state)
    resized.eval()
    old_length = target.max_length(model.config)
    return Conversion(
        model=resized,
        tokenizer=convert_tokenizer(tokenizer, max_length, None) if tokenizer is not None else None,
        source_model=model,
        source_tokenizer=tokenizer,
        target=target,
        max_length=max_length,
        options={**options, "resized_from": old_length, "seed": seed},
        source_name=str(name),
        seconds=time.perf_counter() - started,
        notes=[target.notice] if target.notice else [],
    )


def _target_of(model: PreTrainedModel) -> Target:
    try:
        return target_for_config(model.config)
    except ConversionError:
        raise ConversionError(
            f"resize changes the length of a long model (Longformer, BigBird, Nyströmformer, LED), "
            f"not a {model.config.model_type!r} one; convert it first (roberta2longformer convert)."
        ) from None


def _position_key(model: PreTrainedModel, target: Target) -> str:
    """The table's state-dict key: under ``longformer.``/``led.``… in head models, bare in base models."""
    prefix = model.base_model_prefix
    has_backbone_attribute = prefix and getattr(model, prefix, None) is not None and model.base_model is not model
    return f"{prefix}.{target.position_key}" if has_backbone_attribute else target.position_key


def _initializer_range(config) -> float:
    return getattr(config, "initializer_range", None) or getattr(config, "init_std", 0.02)


def _same_class(model: PreTrainedModel, config) -> PreTrainedModel:
    return instantiate_without_init(type(model), config).to(next(model.parameters()).dtype)
