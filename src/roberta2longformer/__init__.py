"""roberta2longformer: turn a pretrained RoBERTa-family encoder into a long-context model.

The original project's call keeps working::

    from roberta2longformer import convert_roberta_to_longformer
    model, tokenizer = convert_roberta_to_longformer(roberta_model, roberta_tokenizer, longformer_max_length=8192)

Importing the package is instant: each public name is loaded (with ``torch`` and
``transformers``) the first time it is used, so the command line starts at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import ConversionError, ToleranceError

__version__ = "0.1.0"

#: Public name → the module that defines it (imported on first use).
_PUBLIC = {
    "Conversion": ".core.plan",
    "convert": ".pipeline",
    "convert_checkpoint": ".pipeline",
    "resize": ".pipeline",
    "extend_learned_rows": ".core.positions",
    "rebuild_position_table": ".core.positions",
    "save_conversion": ".pipeline",
    "VerificationReport": ".verification",
    "verify": ".verification",
    "convert_roberta_to_bigbird": ".api",
    "convert_roberta_to_led": ".api",
    "convert_roberta_to_longformer": ".api",
    "convert_roberta_to_nystromformer": ".api",
    "resize_longformer": ".api",
    "extend_positions": ".api",
}

__all__ = [
    "Conversion",
    "ConversionError",
    "ToleranceError",
    "VerificationReport",
    "__version__",
    "convert",
    "convert_checkpoint",
    "convert_roberta_to_bigbird",
    "convert_roberta_to_led",
    "convert_roberta_to_longformer",
    "convert_roberta_to_nystromformer",
    "extend_learned_rows",
    "extend_positions",
    "rebuild_position_table",
    "resize",
    "resize_longformer",
    "save_conversion",
    "verify",
]

if TYPE_CHECKING:
    from .api import (
        convert_roberta_to_bigbird,
        convert_roberta_to_led,
        convert_roberta_to_longformer,
        convert_roberta_to_nystromformer,
        extend_positions,
        resize_longformer,
    )
    from .core.plan import Conversion
    from .core.positions import extend_learned_rows, rebuild_position_table
    from .pipeline import convert, convert_checkpoint, resize, save_conversion
    from .verification import VerificationReport, verify


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name], __name__), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_PUBLIC})
