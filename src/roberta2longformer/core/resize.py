"""Give an existing long model (one of our targets) a longer or shorter reach.

Only the learned position table and the config fields that name its length change: the rows the
model already has are kept (the first ``max_length`` of them when shrinking), new rows are filled
by ``position_init``, and every other weight is copied as it is. The result therefore computes
exactly what the original computed on every input both can read, which ``verify`` checks.
"""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

import torch

from ..errors import require_positive_int
from .keys import load_checked
from .plan import Conversion, check_memory_for_positions, instantiate_without_init
from .positions import check_position_init, rebuild_position_table
from .tokenizer import convert_tokenizer

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..targets import Target


def resize_model(
    model: PreTrainedModel,
    target: Target,
    tokenizer: PreTrainedTokenizerBase | None,
    max_length: int,
    *,
    position_init: str = "tile",
    seed: int = 0,
    source_name: str = "",
) -> Conversion:
    """``model`` (a saved model of ``target``) resized to ``max_length`` tokens, as a :class:`Conversion`
    whose source is ``model``."""
    started = time.perf_counter()
    require_positive_int("--max-length", max_length, "8192 tokens")
    check_position_init(position_init)
    config = copy.deepcopy(model.config)
    for field_name, value in target.resize_fields(model.config, max_length).items():
        setattr(config, field_name, value)
    options = {**target.default_options(), **target.saved_options(config), "position_init": position_init}
    target.validate(max_length, options)

    state = dict(model.state_dict())
    offset = target.position_offset(model.config)
    generator = torch.Generator().manual_seed(seed)
    for key in target.position_parameter_names(model):
        check_memory_for_positions(max_length, state[key].shape[1], state[key].dtype)
        state[key] = rebuild_position_table(
            state[key],
            source_offset=offset,
            target_offset=offset,
            max_length=max_length,
            init=position_init,
            std=_initializer_range(model.config),
            generator=generator,
        )
    resized = instantiate_without_init(type(model), config).to(next(model.parameters()).dtype)
    load_checked(resized, state)
    resized.eval()
    return Conversion(
        model=resized,
        tokenizer=convert_tokenizer(tokenizer, max_length, None) if tokenizer is not None else None,
        source_model=model,
        source_tokenizer=tokenizer,
        target=target,
        max_length=max_length,
        options={**options, "resized_from": target.max_length(model.config), "seed": seed},
        source_name=source_name,
        seconds=time.perf_counter() - started,
        notes=target.usage_notes(config),
    )


def _initializer_range(config) -> float:
    return getattr(config, "initializer_range", None) or getattr(config, "init_std", 0.02)
