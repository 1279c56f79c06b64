"""The ``roberta2longformer`` command group: ``--version``, ``--help``, and its commands."""

from __future__ import annotations

import gc
import logging
import signal
import sys

import click

from .. import __version__
from ..runtime import STOP_SIGNALS, request_stop, resumable, stop_requested, written
from ..targets import all_targets
from .bench import bench
from .common import CONTEXT, VERBOSE
from .convert import convert, import_fairseq, resize, verify
from .embeddings import embed, evaluate_embeddings
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
@click.option("-v", "--verbose", is_flag=True, help="Show more: the libraries' warnings, loading bars and log lines.")
def app(verbose: bool) -> None:
    VERBOSE.clear()  # one process may run several commands (tests, a notebook): each says its own
    if verbose:
        VERBOSE.append(True)
        logging.getLogger().setLevel(logging.INFO)


for command in (
    convert,
    verify,
    resize,
    import_fairseq,
    pretrain,
    evaluate,
    finetune,
    evaluate_embeddings,
    embed,
    bench,
):
    app.add_command(command)


def handle_stop(signum: int, frame: object) -> None:
    """Ctrl-C, SIGTERM and SIGHUP end a command the same way: the signal is recorded, and ``SystemExit``
    raised wherever the command is, so that what it was writing is removed on the way out.

    Not in the middle of an import, though: an exception raised there can leave a C extension half
    initialised (torch then aborts the process, exit -6, with the temporary output left behind), so the
    stop waits for the import to finish (retried every 20 ms). And where Python drops the exception (raised
    inside a finalizer), the recorded signal stops the command at its next safe point
    (:func:`~..runtime.stop_if_requested`): before anything is moved into place, or the next training step.
    """
    if signum == signal.SIGALRM:  # the retry of a stop that arrived during an import
        signum = stop_requested() or signal.SIGTERM
    request_stop(signum)
    if _importing(frame):
        signal.signal(signal.SIGALRM, handle_stop)
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
    signal's code and one sentence that says what is true: what it finished writing, or that nothing
    was written (the temporary output was removed on the way out), or where a training run can resume.
    """
    logging.basicConfig(level=logging.WARNING)
    for stop in STOP_SIGNALS:
        signal.signal(stop, handle_stop)
    try:
        code = app.main(prog_name="roberta2longformer", standalone_mode=True)
    except BaseException:
        if stop_requested() is None:
            raise
        code = None
    finally:
        _skip_final_collection()
    signum = stop_requested()
    if signum is not None:
        click.echo(stopped_sentence(signal.Signals(signum).name, written(), resumable()), err=True)
        code = 128 + signum
    sys.exit(code)


def stopped_sentence(name: str, done: list[str], runs: list[str]) -> str:
    """What a stopped command says: what it finished writing, where a training run resumes, or that nothing
    was written."""
    if runs:
        finished = f" (it had written {', '.join(done)})" if done else ""
        return (
            f"Stopped by {name}{finished}; the checkpoints saved so far are in {runs[0]}: run the same command "
            "with --resume to continue from the last complete one."
        )
    if done:
        return f"Stopped by {name} after {', '.join(done)} was written completely; nothing else was written."
    return f"Stopped by {name}; nothing was written."
