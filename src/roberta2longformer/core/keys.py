"""The key-mapping engine: renames declared as data, applied and checked in one place.

A :class:`Rename` is a regular expression over a state-dict key with named groups, and one or
more templates (``\\g<name>`` refers to a group). One key may feed several target keys, e.g. a
RoBERTa ``query`` feeds both Longformer's ``query`` and ``query_global``. Rules are tried in
order and the first that matches wins; a key that no rule matches is an error, never silently
dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import ConversionError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Rename:
    pattern: str
    targets: tuple[str, ...]
    _compiled: re.Pattern = field(init=False, repr=False, compare=False)
    _formats: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_compiled", re.compile(self.pattern))
        # ``\g<name>`` templates as format strings: Match.expand re-parses its template on every
        # call, which on a large checkpoint is most of the key mapping's time.
        if any(re.search(r"[{}]|\\(?!g<\w+>)", template) for template in self.targets):
            raise ValueError(f"Rename targets may only use \\g<name> references: {self.targets}")
        object.__setattr__(self, "_formats", tuple(re.sub(r"\\g<(\w+)>", r"{\1}", t) for t in self.targets))

    def apply(self, key: str) -> tuple[str, ...] | None:
        match = self._compiled.fullmatch(key)
        if match is None:
            return None
        groups = match.groupdict()
        return tuple(template.format_map(groups) for template in self._formats)


def rename(pattern: str, *targets: str) -> Rename:
    """Shorthand for a :class:`Rename` rule: ``rename(r"a\\.(?P<x>.+)", r"b.\\g<x>")``."""
    return Rename(pattern, tuple(targets))


def module_renames(names: Mapping[str, str], *, reverse: bool = False) -> tuple[Rename, ...]:
    """Rules that move whole modules (``old`` and ``old.*``) to new names, or back with ``reverse``."""
    pairs = [(new, old) if reverse else (old, new) for old, new in names.items()]
    return tuple(rename(rf"{re.escape(old)}(?P<rest>(?:\.\w+)?)", rf"{new}\g<rest>") for old, new in pairs)


def kept(*modules: str) -> tuple[Rename, ...]:
    """Rules that keep the keys of whole modules under the names they have (``classifier.…`` stays)."""
    return tuple(rename(rf"(?P<k>{re.escape(module)}\..+)", r"\g<k>") for module in modules)


def rename_keys(
    state: Mapping[str, torch.Tensor],
    rules: Iterable[Rename],
    *,
    what: str,
    dropped: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Apply ``rules`` to every key of ``state``; raise if a key matches no rule or two keys collide.

    A rule with no targets drops the keys it matches on purpose (a module the target does not
    have); they are appended to ``dropped`` so the caller can say so, never silently.
    """
    rules = tuple(rules)
    renamed: dict[str, torch.Tensor] = {}
    unmatched: list[str] = []
    for key, tensor in state.items():
        targets = next((t for rule in rules if (t := rule.apply(key)) is not None), None)
        if targets is None:
            unmatched.append(key)
            continue
        if not targets and dropped is not None:
            dropped.append(key)
        for target in targets:
            if target in renamed and renamed[target] is not tensor:
                raise ConversionError(
                    f"Two {what} weights map onto {target!r}; this checkpoint layout is not supported."
                )
            renamed[target] = tensor
    if unmatched:
        shown = ", ".join(unmatched[:5]) + (" …" if len(unmatched) > 5 else "")
        raise ConversionError(
            f"{len(unmatched)} {what} weight(s) have no place in the target and would be lost "
            f"({shown}); this model layout is not supported."
        )
    return renamed


def load_checked(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state`` into ``model``, requiring exactly its keys and shapes (tied keys may be absent).

    ``load_state_dict(strict=True)`` already refuses missing and unexpected keys; this adds a
    message that names the keys and checks shapes first, so nothing is copied halfway.
    """
    import torch  # not at import: the command line reads the targets before it needs torch

    expected = model.state_dict()
    tied = _tied_aliases(model)
    check_fits(
        type(model).__name__,
        {k: v.shape for k, v in expected.items()},
        {k: v.shape for k, v in state.items()},
        set(tied),
    )
    full = dict(state)
    for alias, source in tied.items():
        full.setdefault(alias, full.get(source, expected[alias]))
    with torch.no_grad():
        model.load_state_dict(full, strict=True)


def check_fits(
    model_name: str, expected: Mapping[str, tuple[int, ...]], given: Mapping[str, tuple[int, ...]], optional: set[str]
) -> None:
    """Raise unless ``given`` has exactly the ``expected`` keys (``optional`` ones may be absent) and shapes."""
    missing = [k for k in expected if k not in given and k not in optional]
    unexpected = [k for k in given if k not in expected]
    wrong_shape = [
        f"{k}: {tuple(given[k])} vs {tuple(expected[k])}"
        for k in given
        if k in expected and tuple(given[k]) != tuple(expected[k])
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing[:5]}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:5]}")
    if wrong_shape:
        problems.append(f"wrong shape {wrong_shape[:5]}")
    if problems:
        raise ConversionError(
            f"The mapped weights do not fit {model_name} ({'; '.join(problems)}); "
            "this is a bug in the key mapping, please report it."
        )


def _tied_aliases(model: nn.Module) -> dict[str, str]:
    """State-dict keys that share storage with an earlier key (tied weights): alias -> first key."""
    first_by_ptr: dict[tuple[int, int], str] = {}
    aliases: dict[str, str] = {}
    for key, tensor in model.state_dict(keep_vars=True).items():
        ident = (tensor.data_ptr(), tensor.numel())
        if tensor.numel() and ident in first_by_ptr:
            aliases[key] = first_by_ptr[ident]
        else:
            first_by_ptr[ident] = key
    return aliases
