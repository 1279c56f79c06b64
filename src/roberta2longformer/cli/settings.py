"""Click options built from an options dataclass whose fields were declared with
:func:`roberta2longformer.settings.setting`: default, help, range and flag are written once, there.

The dataclass is given as a name and a module, imported when the command's options are built (the
command line's startup imports the option declarations, which import nothing heavy).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

import click

from ..settings import flag_of
from .common import Option


def settings_options(
    options_class: type,
    *,
    only: Iterable[str] | None = None,
    exclude: Iterable[str] = (),
    group: str = "Options",
    groups: dict[str, str] | None = None,
) -> Callable[[click.Command], click.Command]:
    """A decorator adding one click option per field of ``options_class`` (``only`` those, none of
    ``exclude``), listed under ``group`` in ``--help`` (``groups``: another heading for some fields)."""
    hints = typing.get_type_hints(options_class)
    wanted = None if only is None else set(only)
    params = [
        _option(field, hints[field.name], (groups or {}).get(field.name, group))
        for field in dataclasses.fields(options_class)
        if field.metadata.get("cli", False)
        and (wanted is None or field.name in wanted)
        and field.name not in set(exclude)
    ]

    def decorate(command: click.Command) -> click.Command:
        command.params.extend(params)
        return command

    return decorate


def settings_from(options_class: type, given: dict[str, Any], **more: Any) -> Any:
    """``options_class`` from a command's parameters (those that are its fields) and ``more``."""
    names = {field.name for field in dataclasses.fields(options_class)}
    return options_class(**{name: value for name, value in given.items() if name in names}, **more)


def _option(field: dataclasses.Field, hint: Any, group: str) -> click.Option:
    meta = field.metadata
    kind = _base_type(hint)
    default = field.default
    declared = dict(help=meta["help"], group=group, default_text=meta.get("default_text") if default is None else None)
    if kind is bool:
        names = [f"{flag_of(field)}/--no-{flag_of(field)[2:]}" if default else flag_of(field), field.name]
        return Option(names, is_flag=True, default=default, **declared)
    return Option([flag_of(field), field.name], type=_click_type(kind, meta), default=default, **declared)


def _base_type(hint: Any) -> type:
    """``int | None`` → ``int``."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def _click_type(kind: type, meta: dict) -> Any:
    if meta.get("choices"):
        return click.Choice(meta["choices"])
    ranged = dict(
        min=meta.get("low"), max=meta.get("high"), min_open=meta.get("low_open"), max_open=meta.get("high_open")
    )
    if kind is int:
        return click.IntRange(**ranged)
    if kind is float:
        return click.FloatRange(**ranged)
    return kind
