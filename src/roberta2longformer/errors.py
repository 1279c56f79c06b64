"""Typed errors. Every message is one sentence: what was wrong and what to do about it."""

from __future__ import annotations


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
