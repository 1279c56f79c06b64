"""Options declared once: each field of a command's options dataclass carries its default, help, range and
flag, the command line builds its options from them (:mod:`roberta2longformer.cli.settings`), and the
dataclass refuses a value out of range however it was made (command line or Python).

Standard library only, so that anything may declare options with it.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from .errors import ConversionError


def setting(
    default: Any,
    help: str,  # noqa: A002  (the word click uses)
    *,
    flag: str | None = None,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    choices: tuple[str, ...] | None = None,
    default_text: str | None = None,
    cli: bool = True,
) -> Any:
    """A dataclass field with what the command line shows and checks: ``flag`` (default: the field's name with
    dashes), a range (``low``/``high``, open or closed), ``choices``, ``default_text`` for a default that is not
    a value ("the model's length"); ``cli=False`` keeps it out of the command line."""
    metadata = {
        "help": help,
        "flag": flag,
        "low": low,
        "high": high,
        "low_open": low_open,
        "high_open": high_open,
        "choices": choices,
        "default_text": default_text,
        "cli": cli,
    }
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def flag_of(field: dataclasses.Field) -> str:
    """The command line's name of a field (``--learning-rate``)."""
    return "--" + (field.metadata.get("flag") or field.name).replace("_", "-")


def check_settings(options: Any) -> None:
    """Refuse a value outside its declared range or choices, naming the flag (NaN is in no range)."""
    for field in dataclasses.fields(options):
        value, meta = getattr(options, field.name), field.metadata
        if value is None or not meta:
            continue
        choices = meta.get("choices")
        if choices and value not in choices:
            raise ConversionError(f"{flag_of(field)} {value!r} is not one of {', '.join(choices)}; choose one of them.")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not _in_range(value, meta):
            raise ConversionError(f"{flag_of(field)} must be {_range_text(meta)}, got {value!r}.")


def _in_range(value: float, meta: dict) -> bool:
    if isinstance(value, float) and math.isnan(value):
        return meta.get("low") is None and meta.get("high") is None
    low, high = meta.get("low"), meta.get("high")
    if low is not None and (value < low or (meta.get("low_open") and value == low)):
        return False
    return not (high is not None and (value > high or (meta.get("high_open") and value == high)))


def _range_text(meta: dict) -> str:
    low, high = meta.get("low"), meta.get("high")
    parts = []
    if low is not None:
        parts.append(f"{'above' if meta.get('low_open') else 'at least'} {low:g}")
    if high is not None:
        parts.append(f"{'below' if meta.get('high_open') else 'at most'} {high:g}")
    return " and ".join(parts) or "a number"
