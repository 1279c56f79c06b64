"""Converting a checkpoint on disk into a checkpoint on disk, at about the cost of copying it once.

The in-memory path (:func:`~.convert.convert`) loads the source model, builds the target model
and copies one into the other: three copies of the weights in memory. Here neither model exists:
the source's tensors stay in their safetensors files (:class:`~..io.checkpoint.StoredTensor`), are
checked against the family's declared layout (:meth:`~.sources.SourceFamily.canonical_layout`),
and the same :func:`~.convert.plan_conversion` maps them onto the target, so each output tensor is
read, cast if asked, and written, one at a time. Only the tensors the plan computes with (the
position table, anything a target derives) are ever in memory.

No ``transformers`` model class is imported unless the result is verified: importing them costs
seconds (on a 2-core machine more than the whole copy of a roberta-base checkpoint), which is most
of what a ``--no-verify`` conversion would otherwise cost. With verification, which loads both
models anyway, the target is also built on the meta device while the kernel copies, and the plan
is checked against what its ``save_pretrained`` writes; a mismatch cancels the copy.

Verification needs real models; it loads the source and the *written* checkpoint after the
conversion, and its time and memory are reported separately.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from ..errors import ConversionError, ToleranceError
from ..io.checkpoint import LazyState, Planned, read_lazily, start_checkpoint
from ..io.output import atomic_output_dir, check_sentence_transformer, require_free_space, write_report_and_card
from ..targets import DEFAULT_TARGET
from .convert import Conversion, Plan, converted_tokenizer, parse_request, plan_conversion, with_trained_positions
from .keys import check_fits
from .loading import check_shapes, load_config, load_model, load_tokenizer, resolve_source
from .sources import check_layer_count, family_for, head_for_class_name, saved_class_name

if TYPE_CHECKING:
    from ..verification import VerificationReport


class NotStreamable(ConversionError):
    """This source converts only in memory; the CLI then falls back to that path."""


@dataclass
class WrittenConversion:
    """What :func:`convert_checkpoint` wrote, and what each phase cost."""

    path: Path
    conversion: Conversion  # no models (the weights went from file to file): class names and configs
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


def _saved_keys(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The keys ``save_pretrained`` writes for ``model`` (tied copies removed), with meta tensors."""
    from ..compat import saved_state

    return saved_state(model)


def _source_state(location: str, config: PretrainedConfig) -> tuple[str, str, LazyState, list[str]]:
    """(class name, head, stored weights in layout order, notes): the checkpoint checked against what
    its class saves, as the family declares it, without building that class."""
    class_name = saved_class_name(config)
    head = head_for_class_name(class_name)
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
    return class_name, head, LazyState((key, dict.__getitem__(stored, key)) for key in kept), notes


def _planned_tensors(plan: Plan) -> list[Planned]:
    """One :class:`Planned` per key of the plan, in the plan's order, in the target's dtype.

    Taken from the plan alone, so writing starts before (or without) the target model being built;
    with verification, :func:`_check_against_target` confirms that these are exactly the tensors,
    shapes and dtypes that the target class saves.
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


def _write_configs(plan: Plan, directory: Path) -> None:
    """config.json (and, for a model that generates, generation_config.json) as ``save_pretrained``
    writes them for the plan's class; the streaming tests prove them identical."""
    import copy

    config = copy.deepcopy(plan.config)
    config.dtype = str(config.dtype).removeprefix("torch.")
    config.architectures = [plan.class_name]
    config.save_pretrained(directory)
    if plan.target.is_encoder_decoder:  # the class generates (LED…ForConditionalGeneration)
        from transformers import GenerationConfig

        GenerationConfig.from_model_config(config).save_pretrained(directory)


def convert_checkpoint(
    source: str | Path,
    output: str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    *,
    to: str = DEFAULT_TARGET,
    max_length: int = 4096,
    dtype: torch.dtype | str | None = None,
    seed: int = 0,
    force: bool = False,
    verify: bool = True,
    smoke: bool = True,
    texts: Sequence[str] | None = None,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    fast_attention: bool = True,
    on_report: Callable[[VerificationReport], None] = lambda report: None,
    **options: Any,
) -> WrittenConversion:
    """Convert the safetensors checkpoint in ``source`` (a directory or ``builtin:NAME``) into ``output``.

    Writes the same tensors as :func:`~.convert.convert` followed by :func:`~.output.save_conversion`
    (bit for bit), plus the tokenizer, ``verification.json`` and a model card, into a temporary
    directory that is renamed to ``output`` only when everything, verification included, succeeded.
    Outputs over ``max_shard_size`` are written as shards with a ``model.safetensors.index.json``.
    Verification runs a Longformer or LED through the fast attention backend unless ``fast_attention=False``.
    """
    started = time.perf_counter()
    request = parse_request(to, max_length, dtype, seed, options)
    location = resolve_source(source)
    if not is_streamable(location):
        raise NotStreamable(
            f"{source} is not a directory of safetensors weights; convert it in memory (roberta2longformer.convert) instead."
        )
    config = load_config(location)
    request = with_trained_positions(request, location)
    if tokenizer is None:
        tokenizer = load_tokenizer(location)
    elif isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)

    with atomic_output_dir(output, force=force, keep=[location]) as staging:
        source_class, head, state, read_notes = _source_state(location, config)
        plan = plan_conversion(config, head, state, tokenizer, request)
        planned = _planned_tensors(plan)
        require_free_space(staging, sum(math.prod(item.shape) * item.dtype.itemsize for item in planned))
        with start_checkpoint(staging, planned, max_shard_size=max_shard_size, progress=progress) as writer:
            # While the kernel copies the weights: with verification (which needs the model classes
            # anyway), build the target on the meta device and check the plan against it (a mismatch
            # cancels the copy); then write configs and tokenizer.
            if verify:
                _check_against_target(plan.build(meta=True), planned)
            _write_configs(plan, staging)
            new_tokenizer = converted_tokenizer(tokenizer, max_length, plan.target)
            if new_tokenizer is not None:
                new_tokenizer.save_pretrained(staging)
        files = writer.files
        seconds = time.perf_counter() - started
        conversion = Conversion(
            model=None,
            tokenizer=new_tokenizer,
            source_model=None,
            source_tokenizer=tokenizer,
            target=plan.target,
            max_length=max_length,
            options=plan.options,
            source_name=str(source),
            seconds=seconds,
            notes=[*read_notes, *plan.notes],
            model_class=plan.class_name,
            source_class=source_class,
            source_config=config,
            carried=plan.carried,
            dropped=plan.dropped,
        )
        report, verify_seconds = None, 0.0
        if verify:
            from ..verification import verify as run_verify

            verify_started = time.perf_counter()
            models = load_model(location), load_model(staging)
            loading_seconds = time.perf_counter() - verify_started
            report = run_verify(
                *models,
                tokenizer,
                smoke=smoke,
                seed=seed,
                raise_on_failure=False,
                source_name=str(source),
                texts=texts,
                options=plan.options,
                fast_attention=fast_attention,
            )
            del models
            report.stage_seconds = {"loading both models": round(loading_seconds, 3), **report.stage_seconds}
            if report.passed:
                check_sentence_transformer(conversion, report, staging, texts=texts, fast_attention=fast_attention)
            verify_seconds = time.perf_counter() - verify_started
            on_report(report)
            if not report.passed:
                raise ToleranceError(report.failures())
        else:
            check_sentence_transformer(conversion, None, staging)
        write_report_and_card(conversion, report, staging)
    return WrittenConversion(
        path=Path(output),
        conversion=conversion,
        report=report,
        files=[Path(output) / f.name for f in files],
        seconds=seconds,
        verify_seconds=verify_seconds,
        notes=conversion.notes,
    )
