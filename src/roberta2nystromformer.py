"""The original project's Nyströmformer module, ASCII spelling: ``from roberta2nystromformer import …``."""

from roberta2longformer import convert_roberta_to_nystromformer

__all__ = ["convert_roberta_to_nystromformer"]
