"""Typed errors. Every message is one sentence: what was wrong and what to do about it."""

from __future__ import annotations

import errno
import os
from typing import Any


class ConversionError(ValueError):
    """Bad input to a conversion: unsupported source, invalid option, unusable output path."""


class ToleranceError(ValueError):
    """The converted model does not compute what the source computed within the tolerance.

    ``summary`` is the one sentence (the command line prints it after the report that lists each
    check); ``str()`` adds the failed checks. ``maybe_trained``: the model may have been trained
    since it was converted (``verify`` of a saved model), when differing is what training does.
    """

    def __init__(self, failures: list[str], *, maybe_trained: bool = False) -> None:
        self.failures = failures
        count = f"The converted model differs from its source in {len(failures)} check(s)"
        if maybe_trained:
            self.summary = (
                f"{count}: expected if it was trained or fine-tuned after conversion (verify proves a conversion, "
                "not a trained model); if it was not, do not use it, and please report this with the source config."
            )
        else:
            self.summary = f"{count}; do not use it, and please report this with the source config."
        lines = "\n".join(f"  {failure}" if failure.startswith("✗") else f"  ✗ {failure}" for failure in failures)
        super().__init__(f"{self.summary}\n{lines}")


def is_positive_int(value: Any) -> bool:
    """A whole number above zero (``True`` is an ``int`` to Python, not to our users)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def require_positive_int(name: str, value: Any, example: str) -> None:
    if not is_positive_int(value):
        raise ConversionError(f"{name} must be a positive whole number (e.g. {example}), got {value!r}.")


def os_error_sentence(error: BaseException) -> str | None:
    """The one sentence for a failure of the machine rather than of the input — a full disk, a file we may not
    write, a name too long — from an ``OSError``, or from the text of a library's own error that wraps one
    (safetensors' "No space left on device", torch's "enforce fail … inline_container"); ``None`` otherwise."""
    code = getattr(error, "errno", None) if isinstance(error, OSError) else None
    text = str(error)
    where = f" ({error.filename})" if isinstance(error, OSError) and error.filename else ""
    if code in (errno.ENOSPC, errno.EDQUOT) or "No space left" in text or "inline_container" in text:
        return (
            f"No space left on the device{where}; free some space or write elsewhere (nothing half-written was kept)."
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Cannot write{where}: {os.strerror(code)}; choose a place you can write to."
    if code == errno.ENAMETOOLONG:
        return f"A file name is too long for the filesystem{where}; choose a shorter one."
    if isinstance(error, OSError):
        return f"{os.strerror(code) if code else text}{where}; check the path and try again."
    return None
