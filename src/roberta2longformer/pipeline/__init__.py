"""One pipeline for every command and API call that makes or checks a long model: open the source once
(resolved, its config checked once), convert or resize it, verify it, and write it atomically with its
report and model card. The command line and :mod:`roberta2longformer.api` both call these."""

from .conversion import Writing, convert, convert_checkpoint, convert_to_directory, verify_conversion
from .fairseq import import_fairseq
from .resizing import resize, resize_to_directory
from .save import save_conversion
from .source import OpenedSource, open_source
from .verifying import verify_saved
from .write import Written

__all__ = [
    "OpenedSource",
    "Writing",
    "Written",
    "convert",
    "convert_checkpoint",
    "convert_to_directory",
    "import_fairseq",
    "open_source",
    "resize",
    "resize_to_directory",
    "save_conversion",
    "verify_conversion",
    "verify_saved",
]
