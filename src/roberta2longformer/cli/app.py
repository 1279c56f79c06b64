"""The ``roberta2longformer`` command group: ``--version``, ``--help``, and its commands."""

from __future__ import annotations

import gc
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
    pass


for command in (convert, verify, resize, import_fairseq, pretrain, evaluate, finetune, evaluate_embeddings, bench):
    app.add_command(command)


#: The stop signal received, if any (see :func:`main`).
_stopped: list[int] = []


def _stop(signum: int, frame: object) -> None:
    """SIGTERM and SIGHUP end a command as Ctrl-C does: what it was writing is removed on the way out.

    Not in the middle of an import, though: an exception raised there can leave a C extension half
    initialised (torch then aborts the process, exit -6, with the temporary output left behind), so
    the stop waits for the import to finish (retried every 20 ms).
    """
    if signum == signal.SIGALRM:  # the retry of a stop that arrived during an import
        signum = _stopped[0]
    elif not _stopped:
        _stopped.append(signum)
    if _importing(frame):
        signal.signal(signal.SIGALRM, _stop)
        signal.setitimer(signal.ITIMER_REAL, 0.02)
        return
    raise SystemExit(128 + signum)


def _importing(frame) -> bool:
    """Whether ``frame`` (the one a signal interrupted) runs inside an import."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib._bootstrap"):
            return True
        frame = frame.f_back
    return False


def _skip_final_collection() -> None:
    """The command is done: spare the interpreter's shutdown a garbage collection over every object
    torch, transformers and the models made (0.6 s of a 3.8 s process that loaded a roberta-base
    source and its conversion, 2-core CPU). Frozen objects are still released by reference counting
    and atexit handlers still run; only cycles are left to the operating system, which frees the
    whole process anyway."""
    gc.freeze()


def main() -> None:
    """The console entry point (also ``python -m roberta2longformer``).

    A stop signal raises ``SystemExit`` wherever the command is; in the middle of an import, the
    importing library may turn it into an error of its own (transformers' lazy modules report a
    module that could not be imported). Whatever comes out, a stopped command exits with the
    signal's code and its one sentence: the temporary output was removed on the way out either way.
    """
    logging.basicConfig(level=logging.WARNING)
    for stop in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, _stop)
    try:
        code = app.main(prog_name="roberta2longformer")
    except BaseException:
        if not _stopped:
            raise
        code = None
    finally:
        _skip_final_collection()
    if _stopped:
        click.echo(f"Stopped by {signal.Signals(_stopped[0]).name}; nothing was written.", err=True)
        code = 128 + _stopped[0]
    sys.exit(code)
