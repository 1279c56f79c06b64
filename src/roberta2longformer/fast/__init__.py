"""A faster self-attention for ``transformers``' Longformer models (and LED encoders), same results.

``enable(model)`` computes every Longformer self-attention layer of that one model instance with
blocked ``scaled_dot_product_attention`` (see :mod:`.attention` for how), ``disable(model)`` goes
back to ``transformers``' own code. Weights, configs and saved files are untouched. The backend
reads any length, so the enabled model also stops padding its inputs to a multiple of the
attention window (``_pad_to_window_size``): transformers' attention needs that padding, and every
layer pays for it (a 257-token input costs 512 tokens' worth of linear layers). The first
``enable`` also has ``transformers`` build Longformer's and LED's padding masks as broadcast views
(same values, no ``L × L`` tensor; see :mod:`.masks`), for every model in the process.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterator

from torch import nn

from ..errors import ConversionError
from . import masks
from .attention import MASK_CACHE, GlobalSlots, MaskCache, blocked_forward, global_slots

__all__ = [
    "GlobalSlots",
    "applies_to",
    "backend_name",
    "blocked_forward",
    "disable",
    "enable",
    "enable_if",
    "global_slots",
    "is_enabled",
    "self_attention_modules",
    "stop_window_padding",
]

_MARK = "_roberta2longformer_fast"


def self_attention_modules(model: nn.Module) -> Iterator[nn.Module]:
    """The Longformer self-attention layers of ``model`` (Longformer's, and LED's encoder's)."""
    for module in model.modules():
        if type(module).__name__ in ("LongformerSelfAttention", "LEDEncoderSelfAttention"):
            yield module


def applies_to(model: nn.Module) -> bool:
    """Whether ``model`` has Longformer self-attention layers this backend can compute."""
    return any(True for _ in self_attention_modules(model))


def enable(model: nn.Module) -> nn.Module:
    """Compute every Longformer self-attention layer of ``model`` with the blocked SDPA backend."""
    modules = list(self_attention_modules(model))
    if not modules:
        raise ConversionError(
            f"{type(model).__name__} has no Longformer self-attention layers; fast attention applies to "
            "Longformer models (LongformerModel, LongformerFor…) and LED encoders."
        )
    masks.install()  # the padding mask as a broadcast view, not an L × L tensor (see .masks)
    cache = MaskCache()  # shared by this model's layers, which see the same masks in one forward
    for module in modules:
        module.forward = functools.partial(blocked_forward, module)  # a bound forward that pickles
        setattr(module, _MARK, True)
        setattr(module, MASK_CACHE, cache)
    stop_window_padding(model)
    return model


def enable_if(model: nn.Module, wanted: bool) -> nn.Module:
    """:func:`enable` when ``wanted`` and ``model`` has Longformer layers (what every command does by
    default, ``--no-fast-attention`` being ``wanted=False``); other models are left as they are."""
    if wanted and applies_to(model):
        enable(model)
    return model


def stop_window_padding(model: nn.Module) -> None:
    """Have ``model``'s LongformerModel / LED encoder pass inputs on at their own length instead of
    padding them to whole windows (part of :func:`enable`; also what the benchmark's floor runs)."""
    for module in _window_padders(model):
        if not getattr(module, _MARK, False):  # enabled twice: wrapped once
            module._pad_to_window_size = _without_padding(module._pad_to_window_size)
            setattr(module, _MARK, True)


def disable(model: nn.Module) -> nn.Module:
    """Go back to ``transformers``' own attention code."""
    for module in self_attention_modules(model):
        if getattr(module, _MARK, False):
            del module.forward  # the instance attribute; the class's forward shows through again
            delattr(module, _MARK)
            delattr(module, MASK_CACHE)
    for module in _window_padders(model):
        if getattr(module, _MARK, False):
            del module._pad_to_window_size
            delattr(module, _MARK)
    return model


def _window_padders(model: nn.Module) -> Iterator[nn.Module]:
    """The modules that pad their inputs to a multiple of the window (LongformerModel, LED's encoder)."""
    for module in model.modules():
        if callable(getattr(module, "_pad_to_window_size", None)):
            yield module


def _without_padding(pad_to_window_size) -> functools.partial:
    """``_pad_to_window_size`` that pads nothing (see :func:`_pad_nothing`); a partial of a module-level
    function, so that an enabled model still pickles."""
    return functools.partial(_pad_nothing, tuple(inspect.signature(pad_to_window_size).parameters))


def _pad_nothing(names: tuple[str, ...], *args, **kwargs) -> tuple:
    """``(0, *the tensor arguments)`` in the order transformers' ``_pad_to_window_size`` returns them:
    its parameters in order, without ``pad_token_id``, its only other argument."""
    given = {**dict(zip(names, args)), **kwargs}
    return (0, *(given.get(name) for name in names if name != "pad_token_id"))


def is_enabled(model: nn.Module) -> bool:
    return any(getattr(m, _MARK, False) for m in self_attention_modules(model))


def backend_name(model: nn.Module) -> str:
    """What computes ``model``'s attention, for reports: this backend, or the model's own code."""
    return "roberta2longformer.fast" if is_enabled(model) else "transformers"
