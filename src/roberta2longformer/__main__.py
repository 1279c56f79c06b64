"""``python -m roberta2longformer``: the command line."""

from .cli import main

main()
