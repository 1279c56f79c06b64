"""The long-context architectures we convert to: one module, one small :class:`Target` class each.

Adding a target is one new module here (a :class:`Target` subclass decorated with
:func:`register`), its import below, and its tests; the conversion core, verification and the
command line (``--to`` and the target's options) pick it up from the registry.
"""

from __future__ import annotations

from .base import POSITION_INIT, TRAINED_POSITIONS, Approximation, NewWeights, Option, Target, no_equivalent_heads
from .registry import (
    all_targets,
    get_target,
    input_length,
    position_table,
    prepare_attention,
    readable_length,
    register,
    target_for_config,
    target_names,
    target_or_none,
)

# Each module registers its target; this order is the order of --to's choices and of --help,
# and the first is the default target.
# isort: off
from . import longformer, nystromformer, bigbird, led, extended  # noqa: E402,F401
# isort: on

DEFAULT_TARGET = "longformer"

__all__ = [
    "DEFAULT_TARGET",
    "POSITION_INIT",
    "TRAINED_POSITIONS",
    "Approximation",
    "NewWeights",
    "Option",
    "Target",
    "all_targets",
    "get_target",
    "input_length",
    "no_equivalent_heads",
    "position_table",
    "prepare_attention",
    "readable_length",
    "register",
    "target_for_config",
    "target_names",
    "target_or_none",
]
