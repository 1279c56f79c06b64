"""Typed errors. Every message is one sentence: what was wrong and what to do about it."""

from __future__ import annotations

from typing import Any


class ConversionError(ValueError):
    """Bad input to a conversion: unsupported source, invalid option, unusable output path."""


class ToleranceError(ValueError):
    """The converted model does not compute what the source computed within the tolerance."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        lines = "\n".join(f"  ✗ {failure}" for failure in failures)
        super().__init__(
            f"The converted model differs from its source in {len(failures)} check(s); "
            f"do not use it, and please report this with the source config:\n{lines}"
        )


def is_positive_int(value: Any) -> bool:
    """A whole number above zero (``True`` is an ``int`` to Python, not to our users)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def require_positive_int(name: str, value: Any, example: str) -> None:
    if not is_positive_int(value):
        raise ConversionError(f"{name} must be a positive whole number (e.g. {example}), got {value!r}.")
