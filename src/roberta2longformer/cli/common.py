"""What every command shares: help grouped by section, exit codes, and small readers.

Nothing here imports ``torch`` or ``transformers``: ``--help`` and bad options are answered before
anything heavy is loaded. Each command imports what it needs when it runs.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..errors import ConversionError, ToleranceError, os_error_sentence

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110, "show_default": True}


class Option(click.Option):
    """An option listed under its ``group`` heading (default "Options") in ``--help``; ``default_text``
    describes a default that is not a value (``the source's``) in the same ``[default: …]`` form as
    the others (click would show it in parentheses)."""

    def __init__(self, *args: Any, group: str = "Options", default_text: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.group = group
        self.default_text = default_text

    def get_help_extra(self, ctx: click.Context) -> Any:
        extra = super().get_help_extra(ctx)
        if self.default_text is not None:
            extra["default"] = self.default_text
        return extra


def given(ctx: click.Context, name: str) -> bool:
    """Whether the user gave option ``name`` (rather than its default)."""
    return ctx.get_parameter_source(name) not in (click.core.ParameterSource.DEFAULT, None)


class Command(click.Command):
    """``--help`` with the options grouped by heading, in declaration order (click lists the positional
    arguments, with their help, above them)."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        groups: dict[str, list[tuple[str, str]]] = {}
        for param in self.get_params(ctx):
            if isinstance(param, click.Argument):
                continue
            record = param.get_help_record(ctx)
            if record is not None:
                groups.setdefault(getattr(param, "group", "Options"), []).append(record)
        for title, records in groups.items():
            with formatter.section(title):
                formatter.write_dl(records)


#: Young-generation collections between two full ones while a short command runs (Python's default: 10).
DEFERRED_FULL_COLLECTIONS = 1000


def short_lived(command: Callable) -> Callable:
    """For commands that run for seconds (convert, verify…): no full garbage collection while they run.

    Importing torch and transformers' model classes creates some 650,000 objects, and on the way
    CPython runs six full collections over the growing heap: 0.4–0.6 s of the 2.9 s those imports
    take (2-core CPU, Python 3.11), about a twentieth of a verified roberta-base conversion. Young
    objects are still collected as usual, so a cycle made and dropped is still freed at once; only
    cycles that have lived through two collections wait for the next full one (after a thousand young
    ones: for these commands, in practice their end). Long-running commands (training, evaluation)
    keep Python's defaults."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        thresholds = gc.get_threshold()
        gc.set_threshold(thresholds[0], thresholds[1], DEFERRED_FULL_COLLECTIONS)
        try:
            return command(*args, **kwargs)
        finally:
            gc.set_threshold(*thresholds)

    return run


def fail(error: Exception | str, code: int) -> None:
    click.secho(f"Error: {error}", fg="red", err=True)
    raise click.exceptions.Exit(code)


@contextlib.contextmanager
def exit_codes() -> Iterator[None]:
    """Bad input exits 2, a model that differs from its source exits 1; each with one sentence. So does what the
    machine refuses (a full disk, a read-only place, a name too long): here is the one place that says it."""
    try:
        yield
    except ConversionError as error:
        fail(error, 2)
    except ToleranceError as error:
        fail(error.summary, 1)  # each failed check is in the report printed above
    except Exception as error:
        sentence = os_error_sentence(error)
        if sentence is None:
            raise
        fail(sentence, 2)


#: ``-v``: show what the libraries say (their warnings, loading bars, every log line).
VERBOSE: list[bool] = []


def quiet_transformers() -> None:
    """Keep transformers, datasets and sentence-transformers to errors and no loading bars, unless ``-v``:
    a command prints its own progress and one line per result. Loaded when a command runs."""
    import datasets  # the libraries' own switches: importing them is the command's cost anyway
    from transformers.utils import logging as hf_logging

    if VERBOSE:  # switched back on: an earlier command in this process may have switched them off
        hf_logging.set_verbosity_warning()
        hf_logging.enable_progress_bar()
        datasets.utils.logging.set_verbosity_warning()
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    for name in ("sentence_transformers", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)


def check_inputs(
    *,
    sources: Iterable[str] = (),
    outputs: Iterable[Path] = (),
    force: bool = False,
    runs: Iterable[Path] = (),
    resume: bool = False,
    data: dict[str, Iterable[str]] | None = None,
    reports: dict[str, Path | None] | None = None,
    files: dict[str, Path | None] | None = None,
    paths: dict[str, Path | None] | None = None,
) -> list[str]:
    """The one place where every command's inputs and outputs are checked, before anything heavy is imported
    (seconds on a busy machine): model ``sources`` (a path that does not exist, a mistyped ``builtin:`` name, a hub
    id offline), conversion ``outputs`` (in place already without ``--force``, a file, the source itself),
    training ``runs`` (in use without ``--resume``), document ``data`` (per option), report files (``--json``,
    ``--plot``), input ``files`` and ``paths`` (files or directories), per option. Returns the sources, resolved."""
    from ..core.locations import resolve_source  # standard library only, as all of these
    from ..io.output import check_output_dir, check_report_path, check_run_directory
    from ..train.documents import check_sources

    resolved = [resolve_source(source) for source in sources]
    kept = [*resolved, *(source for sources_ in (data or {}).values() for source in sources_)]
    for output in outputs:
        check_output_dir(output, force=force, keep=kept)
    for run in runs:
        check_run_directory(run, resume=resume, keep=kept)
    for option, sources_ in (data or {}).items():
        check_sources(list(sources_), option)
    for option, path in (reports or {}).items():
        if path is not None:
            check_report_path(path, option)
    for option, path in (files or {}).items():
        if path is not None and not Path(path).exists():
            raise ConversionError(f"{option} {path} does not exist; give an existing file.")
        if path is not None and not Path(path).is_file():
            raise ConversionError(f"{option} {path} is not a file; give an existing file.")
    for option, path in (paths or {}).items():
        if path is not None and not Path(path).exists():
            raise ConversionError(f"{option} {path} does not exist; give an existing file or directory.")
    return resolved


def require_module(module: str, option: str) -> None:
    """Refuse an option whose optional package is not installed, saying how to install it."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ConversionError(
            f"{option} needs {module}, which is not installed; pip install {module}, or leave {option} out."
        )


def read_texts(path: Path | None) -> list[str] | None:
    """The lines of a ``--texts`` file (real inputs in the source's domain), or ``None``."""
    if path is None:
        return None
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(
            f"Could not read --texts {path} ({error}); give a UTF-8 text file, one input per line."
        ) from None
    if not lines:
        raise ConversionError(f"--texts {path} has no non-empty lines; give one input per line.")
    return lines


def int_list(text: str, what: str) -> list[int]:
    """``"512,1024"`` → ``[512, 1024]``, positive integers only."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConversionError(f"{what} must be positive integers separated by commas (e.g. 512,1024), got {text!r}.")
    return values


def name_list(text: str, allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    """``"a,b"`` → ``["a", "b"]``, each one of ``allowed``; otherwise one sentence naming the choices."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(names) - set(allowed))
    if unknown or not names:
        raise ConversionError(f"Unknown {what} {', '.join(unknown) or repr(text)}; choose from {', '.join(allowed)}.")
    return names


def print_report(report: Any) -> None:
    for line in report.summary_lines():
        click.echo(line)


# Options that several commands take, declared once (each command gives the help where it differs).
force_option = click.option(
    "--force", is_flag=True, help="Replace OUTPUT if it exists (only once the new one is complete)."
)
texts_option = click.option(
    "--texts",
    type=click.Path(path_type=Path),
    default=None,
    help="A file of real inputs in the source's domain, one per line (default: English and German sentences).",
)
fast_attention_option = click.option(
    "--fast-attention/--no-fast-attention",
    default=True,
    help="Longformer/LED: compute attention with roberta2longformer.fast (same results, less time and memory); "
    "--no-fast-attention runs transformers' own code. Other models always run their own.",
)


def note_idle_fast_attention(models: Iterable[str] = (), *, target: Any = None) -> None:
    """``--fast-attention`` typed on the command line for models without Longformer layers (full attention, a
    BigBird…): say that it has nothing to do, rather than let the user believe it ran. Not said for the default."""
    context = click.get_current_context()
    if context.get_parameter_source("fast_attention") is not ParameterSource.COMMANDLINE:
        return
    if not context.params.get("fast_attention"):
        return
    from ..core.loading import load_config  # the command has loaded transformers already
    from ..targets import target_or_none

    targets = [target] if target is not None else [target_or_none(load_config(model)) for model in models]
    if not any(getattr(t, "has_fast_attention", False) for t in targets):
        click.secho(
            "Note: --fast-attention has nothing to do here: it computes Longformer and LED attention, and these "
            "models compute their own (full attention runs on PyTorch's scaled_dot_product_attention already).",
            fg="yellow",
            err=True,
        )


text_field_option = click.option("--text-field", default="text", help="The text field of JSON Lines data.")
precision_option = click.option(
    "--precision",
    type=click.Choice(("auto", "fp32", "bf16", "fp16")),
    default="auto",
    help="auto: bf16/fp16 on a GPU that has it.",
)


def seed_option(help: str):  # noqa: A002  (click's name)
    return click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, help=help)


def json_option(help: str):  # noqa: A002
    return click.option("--json", "json_path", type=click.Path(path_type=Path), default=None, help=help)


def allow_pickle_option(help: str):  # noqa: A002
    return click.option("--allow-pickle", is_flag=True, help=help)
