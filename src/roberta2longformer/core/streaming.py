"""Converting a checkpoint on disk into a checkpoint on disk, at about the cost of copying it once.

The in-memory path (:func:`~.convert.convert`) loads the source model, builds the target model
and copies one into the other: three copies of the weights in memory. Here neither model exists.
Both are built on the meta device, which gives key names, shapes, dtypes and tied weights for
free; the source's tensors stay in their safetensors files (:class:`~.checkpoint.StoredTensor`)
and the same :func:`~.convert.plan_conversion` maps them onto the target, so each output tensor
is read, cast if asked, and written, one at a time. Only the tensors the plan computes with (the
position table, anything a target derives) are ever in memory.

The plan alone fixes the output's layout (names, shapes, dtypes), so writing starts as soon as
it exists, and the target model is built and checked against the plan while the kernel copies:
on a roberta-base checkpoint that work is a sizeable part of the floor, and hiding it behind the
copy is what brings the conversion close to it. A mismatch cancels the copy.

Verification needs real models; it loads the source and the *written* checkpoint after the
conversion, and its time and memory are reported separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModel, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase
from transformers.modeling_utils import remove_tied_weights_from_state_dict

from ..errors import ConversionError, ToleranceError
from ..io.checkpoint import LazyState, Planned, read_lazily, start_checkpoint
from ..io.output import atomic_output_dir, write_report_and_card
from ..targets import get_target
from ..verification import VerificationReport
from ..verification import verify as run_verify
from .convert import (
    Conversion,
    Plan,
    converted_tokenizer,
    instantiate_without_init,
    parse_dtype,
    parse_options,
    plan_conversion,
)
from .keys import check_fits
from .loading import load_config, load_model, load_tokenizer, model_class_for, resolve_source
from .sources import head_for


class NotStreamable(ConversionError):
    """This source converts only in memory; the CLI then falls back to that path."""


@dataclass
class WrittenConversion:
    """What :func:`convert_checkpoint` wrote, and what each phase cost."""

    path: Path
    conversion: Conversion  # its models are on the meta device: class, config and keys, no weights
    report: VerificationReport | None
    files: list[Path]
    seconds: float  # reading, mapping and writing the model and tokenizer
    verify_seconds: float = 0.0  # loading both models and comparing them
    notes: list[str] = field(default_factory=list)


def is_streamable(source: str | Path) -> bool:
    """A local (or built-in) directory whose weights are safetensors: the streaming path applies."""
    try:
        path = Path(resolve_source(source))
    except ConversionError:
        return False
    return path.is_dir() and any(path.glob("*.safetensors"))


def _meta_model(cls: type[PreTrainedModel], config: PretrainedConfig, **kwargs: Any) -> PreTrainedModel:
    if cls is AutoModel:  # a config without ``architectures``: the family's base model, as from_pretrained picks
        from transformers.models.auto.modeling_auto import MODEL_MAPPING

        cls = MODEL_MAPPING[type(config)]
    return instantiate_without_init(cls, config, meta=True, **kwargs)


def _saved_keys(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The keys ``save_pretrained`` writes for ``model`` (tied copies removed), with meta tensors."""
    return remove_tied_weights_from_state_dict(dict(model.state_dict()), model)


def _source_state(location: str, config: PretrainedConfig) -> tuple[PreTrainedModel, LazyState, list[str]]:
    """The source as a meta model plus its stored tensors, checked against what its class expects."""
    source_meta = _meta_model(model_class_for(config), config)
    stored = read_lazily(location)
    expected = _saved_keys(source_meta)
    missing = [k for k in expected if k not in stored]
    if missing and all(".pooler." in f".{k}" for k in missing):
        raise NotStreamable(
            f"The checkpoint in {location} was saved without its pooler, which from_pretrained fills with random "
            "weights (and so would every user of the converted model); convert it in memory (--in-memory), which "
            "carries that pooler over so the result stays equivalent to what from_pretrained gives."
        )
    if missing:
        raise ConversionError(
            f"The checkpoint in {location} lacks {len(missing)} weight(s) that a {type(source_meta).__name__} has "
            f"({', '.join(missing[:3])}{' …' if len(missing) > 3 else ''}); it is incomplete, re-save it with save_pretrained()."
        )
    notes = []
    ignored = [k for k in stored if k not in expected]
    if ignored:
        notes.append(
            f"{len(ignored)} tensor(s) in the checkpoint are not weights of {type(source_meta).__name__} "
            f"({', '.join(ignored[:3])}{' …' if len(ignored) > 3 else ''}) and were ignored, as from_pretrained ignores them."
        )
    shapes = {k: tuple(v.shape) for k, v in expected.items()}
    stored_shapes = {k: dict.__getitem__(stored, k).shape for k in expected}
    check_fits(type(source_meta).__name__, shapes, stored_shapes, set())
    return source_meta, LazyState((k, dict.__getitem__(stored, k)) for k in expected), notes


def _planned_tensors(plan: Plan) -> list[Planned]:
    """One :class:`Planned` per key of the plan, in the plan's order, in the target's dtype.

    Taken from the plan alone, so writing can start before the target model is built;
    :func:`_check_against_target` then confirms that these are exactly the tensors, shapes and
    dtypes that the target class saves.
    """
    dtype = plan.config.dtype
    planned = []
    for key, value in dict.items(plan.state):
        # Plan.build casts floating-point weights to config.dtype and leaves other dtypes alone.
        planned.append(Planned(key, tuple(value.shape), dtype if value.dtype.is_floating_point else value.dtype, value))
    return planned


def _check_against_target(target_meta: PreTrainedModel, planned: Sequence[Planned]) -> None:
    """Refuse a plan that differs from what ``save_pretrained`` would write for the target model."""
    everything = target_meta.state_dict()
    saved = _saved_keys(target_meta)
    given = {item.key: item.shape for item in planned}
    check_fits(type(target_meta).__name__, {k: tuple(v.shape) for k, v in everything.items()}, given, set(everything) - set(saved))
    unsaved = [item.key for item in planned if item.key not in saved]
    wrong_dtype = [item.key for item in planned if item.key in saved and item.dtype != saved[item.key].dtype]
    if unsaved or wrong_dtype:
        raise ConversionError(
            f"The planned {type(target_meta).__name__} checkpoint differs from what save_pretrained writes "
            f"({', '.join(unsaved + wrong_dtype)[:200]}); this is a bug, please report it."
        )


def _write_configs(model: PreTrainedModel, directory: Path) -> None:
    """config.json (and generation_config.json) exactly as ``save_pretrained`` writes them."""
    model.config.dtype = str(model.config.dtype).removeprefix("torch.")
    model.config.architectures = [type(model).__name__]
    model.config.save_pretrained(directory)
    if model.can_generate():
        model.generation_config.save_pretrained(directory)


def convert_checkpoint(
    source: str | Path,
    output: str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    *,
    to: str = "longformer",
    max_length: int = 4096,
    dtype: torch.dtype | str | None = None,
    seed: int = 0,
    force: bool = False,
    verify: bool = True,
    smoke: bool = True,
    texts: Sequence[str] | None = None,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    on_report: Callable[[VerificationReport], None] = lambda report: None,
    **options: Any,
) -> WrittenConversion:
    """Convert the safetensors checkpoint in ``source`` (a directory or ``builtin:NAME``) into ``output``.

    Writes the same tensors as :func:`~.convert.convert` followed by :func:`~.output.save_conversion`
    (bit for bit), plus the tokenizer, ``verification.json`` and a model card, into a temporary
    directory that is renamed to ``output`` only when everything, verification included, succeeded.
    Outputs over ``max_shard_size`` are written as shards with a ``model.safetensors.index.json``.
    """
    started = time.perf_counter()
    target = get_target(to)
    options = parse_options(target, max_length, options)
    wanted_dtype = parse_dtype(dtype)
    location = resolve_source(source)
    if not is_streamable(location):
        raise NotStreamable(
            f"{source} is not a directory of safetensors weights; convert it in memory (roberta2longformer.convert) instead."
        )
    config = load_config(location)
    if tokenizer is None:
        tokenizer = load_tokenizer(location)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)

    with atomic_output_dir(output, force=force) as staging:
        source_meta, state, read_notes = _source_state(location, config)
        plan = plan_conversion(
            config, head_for(source_meta), state, tokenizer,
            target=target, max_length=max_length, options=options, dtype=wanted_dtype, seed=seed,
        )
        planned = _planned_tensors(plan)
        with start_checkpoint(staging, planned, max_shard_size=max_shard_size, progress=progress) as writer:
            # While the kernel copies the weights: build the target on the meta device and check
            # the plan against it (a mismatch cancels the copy), then write configs and tokenizer.
            target_meta = plan.build(meta=True)
            _check_against_target(target_meta, planned)
            _write_configs(target_meta, staging)
            new_tokenizer = converted_tokenizer(tokenizer, max_length, target)
            if new_tokenizer is not None:
                new_tokenizer.save_pretrained(staging)
        files = writer.files
        seconds = time.perf_counter() - started
        conversion = Conversion(
            model=target_meta, tokenizer=new_tokenizer, source_model=source_meta, source_tokenizer=tokenizer,
            target=target, max_length=max_length, options=plan.options, source_name=str(source),
            seconds=seconds, notes=[*read_notes, *plan.notes],
        )
        report, verify_seconds = None, 0.0
        if verify:
            verify_started = time.perf_counter()
            report = run_verify(
                load_model(location), load_model(staging), tokenizer,
                smoke=smoke, seed=seed, raise_on_failure=False, source_name=str(source), texts=texts,
            )
            verify_seconds = time.perf_counter() - verify_started
            on_report(report)
            if not report.passed:
                raise ToleranceError(report.failures())
        write_report_and_card(conversion, report, staging)
    return WrittenConversion(
        path=Path(output), conversion=conversion, report=report, files=[Path(output) / f.name for f in files],
        seconds=seconds, verify_seconds=verify_seconds, notes=conversion.notes,
    )
