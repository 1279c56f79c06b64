"""Writing a conversion: weights, tokenizer, a sentence-transformers source's modules, ``verification.json``
and the model card, into a temporary directory renamed into place only when everything, verification
included, succeeded."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.output import atomic_output_dir, require_free_space
from ..io.sentence_transformers import carry_modules
from ..runtime import phase
from .card import conversion_card

if TYPE_CHECKING:
    from ..core.plan import Conversion
    from ..verification import VerificationReport


@dataclass
class Written:
    """What a conversion (or resize) wrote, and what each phase cost."""

    path: Path
    conversion: Conversion
    report: VerificationReport | None
    files: list[Path]
    seconds: float  # reading, mapping and writing the model and tokenizer
    verify_seconds: float = 0.0  # loading both models and comparing them
    notes: list[str] = field(default_factory=list)
    streamed: bool = False


@dataclass
class Proof:
    """How a written conversion is verified: ``check(staging)`` gives the report (``None``: not verified),
    and a sentence-transformers source's directory adds its embedding checks on ``texts``."""

    check: Callable[[Path], VerificationReport | None] = lambda staging: None
    sentence_transformer: Path | None = None
    texts: Sequence[str] | None = None
    fast_attention: bool = True
    on_report: Callable[[VerificationReport], None] = lambda report: None


def write_conversion(
    conversion: Conversion,
    output: str | Path,
    write_weights: Callable[[Path], list[Path]],
    proof: Proof,
    *,
    force: bool = False,
    keep: Sequence[str | Path] = (),
) -> tuple[VerificationReport | None, list[Path], float]:
    """Write ``conversion`` into ``output`` atomically: ``write_weights(staging)`` writes the model and tokenizer,
    then ``proof`` verifies what was written; a failed verification raises its :class:`ToleranceError` and
    nothing is left behind. Returns (report, weight files, seconds spent verifying)."""
    with atomic_output_dir(output, force=force, keep=keep) as staging:
        files = write_weights(staging)
        phase("verifying")
        started = time.perf_counter()
        report = proof.check(staging)
        if proof.sentence_transformer is not None:
            carry_modules(proof.sentence_transformer, staging, conversion.max_length)
            if report is not None:
                from ..verification.sentence_embeddings import add_sentence_embedding_checks  # when verifying

                add_sentence_embedding_checks(
                    report, proof.sentence_transformer, staging, proof.texts, fast_attention=proof.fast_attention
                )
        verify_seconds = time.perf_counter() - started
        if report is not None:
            proof.on_report(report)
            report.require_passed()
            (staging / "verification.json").write_text(report.to_json() + "\n", encoding="utf-8")
        (staging / "README.md").write_text(conversion_card(conversion, report, staging), encoding="utf-8")
    return report, [Path(output) / file.name for file in files], verify_seconds


def model_writer(conversion: Conversion, max_shard_size: int | str = "5GB") -> Callable[[Path], list[Path]]:
    """``write_weights`` for a model in memory: ``save_pretrained`` (sharded over ``max_shard_size``) and the
    tokenizer."""

    def write(staging: Path) -> list[Path]:
        require_free_space(staging, model_bytes(conversion.model))
        phase("writing")
        conversion.model.save_pretrained(staging, max_shard_size=max_shard_size)
        if conversion.tokenizer is not None:
            conversion.tokenizer.save_pretrained(staging)
        return sorted(staging.glob("*.safetensors"))

    return write


def model_bytes(model) -> int:
    """What a model's weights take on disk (shared tensors counted once)."""
    seen = {(t.data_ptr(), t.numel()): t.numel() * t.element_size() for t in model.state_dict().values()}
    return sum(seen.values())
