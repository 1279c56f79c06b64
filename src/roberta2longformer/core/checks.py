"""Whether a source config can describe a model at all, and whether the weights fit it: checked once,
when a source is opened, before any weight is read."""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConversionError, is_positive_int
from .families import SourceFamily, family_for

if TYPE_CHECKING:
    from transformers import PretrainedConfig

_SIZE_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "vocab_size",
)


def checked_family(config: PretrainedConfig) -> SourceFamily:
    """The family of a source config, after refusing a config no target can reproduce (one sentence)."""
    family = family_for(config)
    check_absolute_positions(config)
    check_config_values(family.canonical_config(config), family.position_offset)
    family.check_config(config)
    return family


def config_problems(config: PretrainedConfig, position_offset: Callable[[PretrainedConfig], int]) -> list[str]:
    """What in a source config no model can have (sizes, ids, activation), in words; empty when sane."""
    problems = [
        f"{name}={getattr(config, name, None)!r} (must be a positive whole number)"
        for name in _SIZE_FIELDS
        if not is_positive_int(getattr(config, name, None))
    ]
    if problems:
        return problems
    if config.hidden_size % config.num_attention_heads:
        problems.append(
            f"hidden_size={config.hidden_size} is not a multiple of num_attention_heads={config.num_attention_heads}"
        )
    pad = getattr(config, "pad_token_id", None)
    if pad is not None and not (isinstance(pad, int) and 0 <= pad < config.vocab_size):
        problems.append(f"pad_token_id={pad!r} is not an id of the {config.vocab_size}-token vocabulary")
    if not problems:
        offset = position_offset(config)
        if config.max_position_embeddings <= offset:
            problems.append(
                f"max_position_embeddings={config.max_position_embeddings} leaves no position after the {offset} offset rows"
            )
    eps = getattr(config, "layer_norm_eps", 1e-12)
    if not (isinstance(eps, (int, float)) and not isinstance(eps, bool) and 0 < eps < float("inf")):
        problems.append(f"layer_norm_eps={eps!r} (a layer norm's epsilon is a small positive number)")
    activation = getattr(config, "hidden_act", "gelu")
    if isinstance(activation, str) and activation not in known_activations():
        problems.append(f"hidden_act={activation!r} is not an activation transformers knows")
    return problems


def check_config_values(config: PretrainedConfig, position_offset: Callable[[PretrainedConfig], int]) -> None:
    problems = config_problems(config, position_offset)
    if problems:
        raise ConversionError(
            f"The source's config.json cannot describe a model ({'; '.join(problems)}); "
            "give the config.json that was saved with these weights."
        )


def check_absolute_positions(config: PretrainedConfig) -> None:
    kind = getattr(config, "position_embedding_type", "absolute") or "absolute"
    if kind != "absolute":
        raise ConversionError(
            f"The source uses position_embedding_type={kind!r}; only learned absolute positions "
            "can be carried over to a long model."
        )


_LAYER_INDEX = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def check_layer_count(config: PretrainedConfig, keys: Iterable[str], location: object) -> None:
    """Refuse weights for more layers than the config has: a model built from it would drop them."""
    indices = {int(m.group(1)) for key in keys if (m := _LAYER_INDEX.search(key))}
    if indices and max(indices) >= config.num_hidden_layers:
        raise ConversionError(
            f"The checkpoint in {location} has weights for {max(indices) + 1} layers but its config.json says "
            f"num_hidden_layers={config.num_hidden_layers}; give the config.json that was saved with these weights."
        )


@functools.cache
def known_activations() -> frozenset[str]:
    """The activation names transformers knows (``ACT2CLS``'s keys), read from its own source.

    Importing ``transformers.activations`` pulls in its kernel-hub integration: 1.2 s of imports
    (``python -X importtime``) that a streaming conversion otherwise never pays. Once a model class
    has imported it anyway, its table is used directly.
    """
    if "transformers.activations" not in sys.modules:
        spec = importlib.util.find_spec("transformers.activations")
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8")) if spec and spec.origin else ast.Module([], [])
        for node in tree.body:
            names = [getattr(t, "id", None) for t in node.targets] if isinstance(node, ast.Assign) else []
            if "ACT2CLS" in names and isinstance(node.value, ast.Dict):
                return frozenset(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    from transformers.activations import ACT2FN  # already imported by a model class: no cost

    return frozenset(ACT2FN)
