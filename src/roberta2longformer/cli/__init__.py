"""The ``roberta2longformer`` command line (click): each command in the module of its subsystem.

Options of ``convert`` that belong to a target come from the target registry, grouped by target in
``--help``; so do the ``--to``, ``--position-init`` and ``--dtype`` choices.
"""

from .app import app, main

__all__ = ["app", "main"]
