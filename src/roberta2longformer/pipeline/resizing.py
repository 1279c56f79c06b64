"""Resizing a long model: in memory (a model object back), or into a directory, verified against the
model it was resized from on every input both read."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.plan import Conversion
from ..core.resize import resize_model
from ..errors import ConversionError
from ..io.output import check_output_dir
from ..targets import Target, target_or_none
from .conversion import verify_conversion
from .source import OpenedSource, open_source
from .write import Proof, Written, model_writer, write_conversion

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from ..verification import VerificationReport


def resize(
    model: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    max_length: int = 8192,
    *,
    position_init: str = "tile",
    seed: int = 0,
) -> Conversion:
    """Resize a long model of one of our targets (object or directory) to ``max_length`` tokens."""
    opened = open_source(model, tokenizer, long_model=True)
    return _resized(opened, max_length, position_init, seed)


def _resized(opened: OpenedSource, max_length: int, position_init: str, seed: int) -> Conversion:
    started = time.perf_counter()
    resized = resize_model(
        opened.load(), _target_of(opened), opened.tokenizer, max_length,
        position_init=position_init, seed=seed, source_name=opened.name,
    )  # fmt: skip
    resized.seconds = time.perf_counter() - started
    return resized


def _target_of(opened: OpenedSource) -> Target:
    target = target_or_none(opened.config)
    if target is None:
        raise ConversionError(
            f"resize changes the length of a long model (Longformer, BigBird, Nyströmformer, LED), "
            f"not a {opened.config.model_type!r} one; convert it first (roberta2longformer convert)."
        )
    return target


def resize_to_directory(
    model: str | Path,
    output: str | Path,
    *,
    max_length: int,
    position_init: str = "tile",
    seed: int = 0,
    force: bool = False,
    verify: bool = True,
    smoke: bool = True,
    fast_attention: bool = True,
    on_report: Callable[[VerificationReport], None] = lambda report: None,
) -> Written:
    """Resize the long model in ``model`` into the directory ``output``, verified before it is moved into place."""
    check_output_dir(output, force=force, keep=[model])
    opened = open_source(model, long_model=True)
    resized = _resized(opened, max_length, position_init, seed)
    proof = Proof(sentence_transformer=opened.sentence_transformer, fast_attention=fast_attention, on_report=on_report)
    if verify:
        proof.check = lambda staging: verify_conversion(resized, smoke=smoke, seed=seed, fast_attention=fast_attention)
    report, files, verify_seconds = write_conversion(
        resized, output, model_writer(resized), proof, force=force, keep=[opened.location]
    )
    return Written(Path(output), resized, report, files, resized.seconds, verify_seconds, resized.notes)
