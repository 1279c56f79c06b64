"""Converting a source: in memory (a model object back), or into a directory (streamed file to file where
the source allows, in memory otherwise), verified before anything is moved into place."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.loading import load_model
from ..core.plan import Conversion, Request, converted_tokenizer, plan_conversion
from ..core.streaming import NotStreamable, copy_plan, read_source
from ..io.output import check_output_dir
from ..targets import DEFAULT_TARGET
from .source import OpenedSource, fit_request, open_source, parse_request
from .write import Proof, Written, model_writer, write_conversion

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..verification import VerificationReport


def convert(
    source: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    *,
    to: str = DEFAULT_TARGET,
    max_length: int = 4096,
    dtype: torch.dtype | str | None = None,
    allow_pickle: bool = False,
    seed: int = 0,
    **options: Any,
) -> Conversion:
    """Convert ``source`` (a model, a directory, a hub id, ``builtin:NAME`` or a fairseq RoBERTa ``.pt``
    with its ``dict.txt``, which needs ``allow_pickle``) to the ``to`` target, in memory.

    ``tokenizer`` may be a tokenizer, a path, or ``None`` (then the one saved with a path source is
    used, if any). ``options`` are the target's (for Longformer: ``attention_window``,
    ``position_init``). The caller's model and tokenizer are never modified. To write a converted
    checkpoint without holding either model in memory, use :func:`convert_checkpoint`.
    """
    started = time.perf_counter()
    request = parse_request(to, max_length, dtype, seed, options)
    opened = open_source(source, tokenizer, allow_pickle=allow_pickle)
    conversion = _in_memory(opened, fit_request(request, opened), started)
    for note in conversion.notes:  # the command line prints them itself; here, the caller's logging shows them
        logger.warning(note)
    return conversion


def _in_memory(opened: OpenedSource, request: Request, started: float) -> Conversion:
    model = opened.load()
    plan = plan_conversion(model.config, opened.head, model.state_dict(), opened.tokenizer, request)
    return plan.conversion(
        model=plan.load(),
        tokenizer=converted_tokenizer(opened.tokenizer, request.max_length, plan.target),
        source_model=model,
        source_tokenizer=opened.tokenizer,
        source_name=opened.name,
        seconds=time.perf_counter() - started,
    )


@dataclass
class Writing:
    """How a conversion is written and proven (see :func:`convert_to_directory` for each)."""

    force: bool = False
    verify: bool = True
    smoke: bool = True
    seed: int = 0
    texts: Sequence[str] | None = None
    max_shard_size: int | str = "5GB"
    progress: bool = True
    fast_attention: bool = True
    on_report: Callable[[VerificationReport], None] = lambda report: None

    def proof(self, source: OpenedSource) -> Proof:
        return Proof(
            sentence_transformer=source.sentence_transformer,
            texts=self.texts,
            fast_attention=self.fast_attention,
            on_report=self.on_report,
        )

    @property
    def verifying(self) -> dict[str, Any]:
        return dict(smoke=self.smoke, seed=self.seed, texts=self.texts, fast_attention=self.fast_attention)


def convert_to_directory(
    source: PreTrainedModel | str | Path,
    output: str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    *,
    to: str = DEFAULT_TARGET,
    max_length: int = 4096,
    dtype: torch.dtype | str | None = None,
    seed: int = 0,
    allow_pickle: bool = False,
    in_memory: bool = False,
    stream_only: bool = False,
    force: bool = False,
    verify: bool = True,
    smoke: bool = True,
    texts: Sequence[str] | None = None,
    max_shard_size: int | str = "5GB",
    progress: bool = True,
    fast_attention: bool = True,
    on_report: Callable[[VerificationReport], None] = lambda report: None,
    **options: Any,
) -> Written:
    """Convert ``source`` into the directory ``output``: model, tokenizer, ``verification.json`` (when verified)
    and a model card, written atomically, only once verification (when asked) passed.

    A directory of safetensors weights is streamed (tensors copied from file to file, bit for bit what the
    in-memory path writes); other sources, or ``in_memory``, go through memory (``stream_only``: raise
    :class:`NotStreamable` instead). Outputs over ``max_shard_size`` are written as shards with an index.
    Verification runs a Longformer or LED through the fast attention backend unless ``fast_attention=False``;
    ``on_report`` sees the report before anything is moved into place.
    """
    started = time.perf_counter()
    writing = Writing(force, verify, smoke, seed, texts, max_shard_size, progress, fast_attention, on_report)
    request = parse_request(to, max_length, dtype, seed, options)
    if isinstance(source, (str, Path)):
        check_output_dir(output, force=force)  # cheap checks first: before the source is read
    opened = open_source(source, tokenizer, allow_pickle=allow_pickle)
    request = fit_request(request, opened)
    check_output_dir(output, force=force, keep=_keep(opened))
    stored = _stored_state(opened, in_memory=in_memory, stream_only=stream_only)
    if stored is None:
        return _write_in_memory(_in_memory(opened, request, started), opened, output, writing)
    return _write_streamed(opened, request, stored, output, writing, started)


def _keep(opened: OpenedSource) -> list[str]:
    """What ``--force`` must never delete: the source."""
    return [opened.location] if opened.location else []


def _stored_state(opened: OpenedSource, *, in_memory: bool, stream_only: bool):
    """The source's stored weights and notes when it is to be streamed, else ``None``."""
    if not in_memory and opened.streamable:
        try:
            return read_source(opened.location, opened.config, opened.class_name, opened.head)
        except NotStreamable:
            if stream_only:
                raise
            return None
    if stream_only:
        raise NotStreamable(
            f"{opened.name} is not a directory of safetensors weights; convert it in memory "
            "(roberta2longformer.convert) instead."
        )
    return None


def _write_in_memory(conversion: Conversion, opened: OpenedSource, output, writing: Writing) -> Written:
    proof = writing.proof(opened)
    if writing.verify:
        proof.check = lambda staging: verify_conversion(conversion, **writing.verifying)
    write = model_writer(conversion, writing.max_shard_size)
    report, files, verify_seconds = write_conversion(
        conversion, output, write, proof, force=writing.force, keep=_keep(opened)
    )
    return Written(Path(output), conversion, report, files, conversion.seconds, verify_seconds, conversion.notes)


def _write_streamed(
    opened: OpenedSource, request: Request, stored, output, writing: Writing, started: float
) -> Written:
    state, read_notes = stored
    plan = plan_conversion(opened.config, opened.head, state, opened.tokenizer, request)
    conversion = plan.conversion(
        tokenizer=converted_tokenizer(opened.tokenizer, request.max_length, plan.target),
        source_tokenizer=opened.tokenizer,
        source_name=opened.name,
        seconds=0.0,
        source_class=opened.class_name,
        source_config=opened.config,
    )
    conversion.notes[:0] = read_notes

    def write_weights(staging: Path) -> list[Path]:
        def write_tokenizer() -> None:
            if conversion.tokenizer is not None:
                conversion.tokenizer.save_pretrained(staging)

        files = copy_plan(plan, staging, max_shard_size=writing.max_shard_size, progress=writing.progress,
                          check_target=writing.verify, meanwhile=write_tokenizer)  # fmt: skip
        conversion.seconds = time.perf_counter() - started
        return files

    proof = writing.proof(opened)
    if writing.verify:
        proof.check = lambda staging: _verify_written(opened, staging, conversion.options, **writing.verifying)
    report, files, verify_seconds = write_conversion(
        conversion, output, write_weights, proof, force=writing.force, keep=_keep(opened)
    )
    return Written(Path(output), conversion, report, files, conversion.seconds, verify_seconds, conversion.notes, True)


def convert_checkpoint(source: str | Path, output: str | Path, tokenizer=None, **settings: Any) -> Written:
    """:func:`convert_to_directory` by streaming only: a source that cannot be streamed (not a directory of
    safetensors weights, or saved without its pooler) raises :class:`NotStreamable`."""
    return convert_to_directory(source, output, tokenizer, stream_only=True, **settings)


def verify_conversion(
    conversion: Conversion,
    *,
    smoke: bool = True,
    seed: int = 0,
    texts: Sequence[str] | None = None,
    fast_attention: bool = True,
) -> VerificationReport:
    """The proof of an in-memory conversion or resize, against the source it holds (not raising)."""
    from ..verification import verify as run_verify  # the models are in memory: their classes are loaded

    return run_verify(
        conversion.source_model,
        conversion.model,
        conversion.source_tokenizer,
        smoke=smoke,
        seed=seed,
        raise_on_failure=False,
        source_name=conversion.source_name,
        texts=texts,
        options=conversion.options,
        fast_attention=fast_attention,
    )


def _verify_written(opened: OpenedSource, staging: Path, options: dict, **verifying: Any) -> VerificationReport:
    """The proof of a streamed conversion: the source and the *written* checkpoint, loaded (timed apart)."""
    from ..verification import verify as run_verify  # model classes: only when verifying (see core.streaming)

    started = time.perf_counter()
    models = load_model(opened.location, config=opened.config), load_model(staging)
    loading = time.perf_counter() - started
    report = run_verify(
        *models, opened.tokenizer, raise_on_failure=False, source_name=opened.name, options=options, **verifying
    )
    report.stage_seconds = {"loading both models": round(loading, 3), **report.stage_seconds}
    return report
