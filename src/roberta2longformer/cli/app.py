"""The ``roberta2longformer`` command group: ``--version``, ``--help``, and its commands."""

from __future__ import annotations

import logging
import signal
import sys

import click

from .. import __version__
from ..targets import all_targets
from .bench import bench
from .common import CONTEXT
from .convert import convert, import_fairseq, resize, verify
from .embeddings import evaluate_embeddings
from .finetune import finetune
from .train import evaluate, pretrain


class _Group(click.Group):
    """Commands listed in the order of the path they follow (convert → verify → … → bench), not alphabetically."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


@click.group(
    cls=_Group,
    context_settings=CONTEXT,
    no_args_is_help=True,
    help=(
        "Turn a pretrained RoBERTa-family encoder (RoBERTa, XLM-R, CamemBERT, BERT, fairseq RoBERTa) into a "
        f"long-context model ({', '.join(t.title for t in all_targets())}) that loads with plain transformers "
        "classes, and prove it exact; then continue its pretraining, measure it and fine-tune it."
    ),
)
@click.version_option(__version__, "-V", "--version", prog_name="roberta2longformer", message="%(prog)s %(version)s")
def app() -> None:
    # The commands print the conversion's notes themselves; the library also logs them, for API users.
    logging.getLogger("roberta2longformer.core.convert").setLevel(logging.ERROR)


for command in (convert, verify, resize, import_fairseq, pretrain, evaluate, finetune, evaluate_embeddings, bench):
    app.add_command(command)


def _stop(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP end a command as Ctrl-C does: what it was writing is removed on the way out."""
    click.echo(f"Stopped by {signal.Signals(signum).name}; nothing was written.", err=True)
    raise SystemExit(128 + signum)


def main() -> None:
    """The console entry point (also ``python -m roberta2longformer``)."""
    logging.basicConfig(level=logging.WARNING)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop)
    sys.exit(app.main(prog_name="roberta2longformer"))
