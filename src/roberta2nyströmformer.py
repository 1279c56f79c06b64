"""The original project's module name, umlaut included: ``from roberta2nyströmformer import …``."""

from roberta2longformer import convert_roberta_to_nystromformer

__all__ = ["convert_roberta_to_nystromformer"]
