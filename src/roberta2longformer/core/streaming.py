"""Converting a checkpoint on disk into a checkpoint on disk, at about the cost of copying it once.

The in-memory path loads the source model, builds the target model and copies one into the other:
three copies of the weights in memory. Here neither model exists: the source's tensors stay in their
safetensors files (:class:`~..io.checkpoint.StoredTensor`), are checked against the family's declared
layout (:meth:`~.families.SourceFamily.canonical_layout`), and the same
:func:`~.plan.plan_conversion` maps them onto the target, so each output tensor is read, cast if asked,
and written, one at a time. Only the tensors the plan computes with (the position table, anything a
target derives) are ever in memory.

This module only reads and copies: verification, the model card and the atomic output directory are
the pipeline's (:mod:`roberta2longformer.pipeline`). No ``transformers`` model class is imported unless
the caller asks for the plan to be checked against one (``check_target``): importing them costs
seconds (on a 2-core machine more than the whole copy of a roberta-base checkpoint).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..compat import saved_state
from ..errors import ConversionError
from ..io.checkpoint import LazyState, Planned, read_lazily, start_checkpoint
from ..io.output import require_free_space
from ..runtime import phase
from .checks import check_layer_count
from .families import family_for
from .keys import check_fits
from .loading import check_shapes
from .plan import Plan

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel


class NotStreamable(ConversionError):
    """This source converts only in memory; the command line then falls back to that path."""


def is_streamable(location: str | Path) -> bool:
    """A local directory whose weights are safetensors: the streaming path applies."""
    path = Path(location)
    return path.is_dir() and any(path.glob("*.safetensors"))


def read_source(location: str, config: PretrainedConfig, class_name: str, head: str) -> tuple[LazyState, list[str]]:
    """(stored weights in layout order, notes): the checkpoint checked against what its class saves, as the
    family declares it, without building that class."""
    family = family_for(config)
    stored = read_lazily(location)
    check_layer_count(config, stored, location)
    stored_as = family.canonical_names(stored, head)  # canonical name → stored key
    layout = family.canonical_layout(config, head)
    missing = [name for name in layout if name not in stored_as]
    if missing and all(".pooler." in f".{name}" for name in missing):
        raise NotStreamable(
            f"The checkpoint in {location} was saved without its pooler, which from_pretrained fills with random "
            "weights (and so would every user of the converted model); convert it in memory (--in-memory), which "
            "carries that pooler over so the result stays equivalent to what from_pretrained gives."
        )
    if missing:
        raise ConversionError(
            f"The checkpoint in {location} lacks {len(missing)} weight(s) that a {class_name} has "
            f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}); it is incomplete, re-save it with save_pretrained()."
        )
    check_shapes(location, config, stored)
    kept = [stored_as[name] for name in layout]
    notes = []
    ignored = sorted(set(stored) - set(kept))
    if ignored:
        notes.append(
            f"{len(ignored)} tensor(s) in the checkpoint are not weights of {class_name} "
            f"({', '.join(ignored[:3])}{' …' if len(ignored) > 3 else ''}) and were ignored, as from_pretrained ignores them."
        )
    return LazyState((key, dict.__getitem__(stored, key)) for key in kept), notes


def planned_tensors(plan: Plan) -> list[Planned]:
    """One :class:`Planned` per key of the plan, in the plan's order, in the target's dtype.

    Taken from the plan alone, so writing starts before (or without) the target model being built;
    :func:`check_against_target` confirms that these are exactly the tensors, shapes and dtypes that the
    target class saves.
    """
    dtype = plan.config.dtype
    planned = []
    for key, value in dict.items(plan.state):
        # Plan.build casts floating-point weights to config.dtype and leaves other dtypes alone.
        planned.append(Planned(key, tuple(value.shape), dtype if value.dtype.is_floating_point else value.dtype, value))
    return planned


def check_against_target(target_meta: PreTrainedModel, planned: Sequence[Planned]) -> None:
    """Refuse a plan that differs from what ``save_pretrained`` would write for the target model."""
    everything = target_meta.state_dict()
    saved: dict[str, torch.Tensor] = saved_state(target_meta)
    given = {item.key: item.shape for item in planned}
    check_fits(
        type(target_meta).__name__,
        {k: tuple(v.shape) for k, v in everything.items()},
        given,
        set(everything) - set(saved),
    )
    unsaved = [item.key for item in planned if item.key not in saved]
    wrong_dtype = [item.key for item in planned if item.key in saved and item.dtype != saved[item.key].dtype]
    if unsaved or wrong_dtype:
        raise ConversionError(
            f"The planned {type(target_meta).__name__} checkpoint differs from what save_pretrained writes "
            f"({', '.join(unsaved + wrong_dtype)[:200]}); this is a bug, please report it."
        )


def write_configs(plan: Plan, directory: Path) -> None:
    """config.json (and, for a model that generates, generation_config.json) as ``save_pretrained``
    writes them for the plan's class; the streaming tests prove them identical."""
    config = copy.deepcopy(plan.config)
    config.dtype = str(config.dtype).removeprefix("torch.")
    config.architectures = [plan.class_name]
    config.save_pretrained(directory)
    if plan.target.is_encoder_decoder:  # the class generates (LED…ForConditionalGeneration)
        from transformers import GenerationConfig  # with the configs: loaded by then, no cost

        GenerationConfig.from_model_config(config).save_pretrained(directory)


def copy_plan(
    plan: Plan,
    directory: Path,
    *,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    check_target: bool = True,
    meanwhile: Callable[[], None] = lambda: None,
) -> list[Path]:
    """Write the plan's tensors (sharded over ``max_shard_size``) and configs into ``directory``; returns the
    weight files. While the kernel copies: the plan is checked against the target class built on the meta
    device (``check_target``; a mismatch cancels the copy), the configs are written, and ``meanwhile`` runs
    (the pipeline writes the tokenizer there)."""
    planned = planned_tensors(plan)
    require_free_space(directory, sum(math.prod(item.shape) * item.dtype.itemsize for item in planned))
    with start_checkpoint(directory, planned, max_shard_size=max_shard_size, progress=progress) as writer:
        phase("writing")  # the kernel is copying the weights now
        if check_target:
            check_against_target(plan.build(meta=True), planned)
        write_configs(plan, directory)
        meanwhile()
    return writer.files
