"""Writing results: into a temporary directory first, moved into place only when complete.

The move is one ``renameat2`` call on Linux: ``RENAME_NOREPLACE`` without ``--force`` (so an output
that appeared meanwhile, another run's or the user's, is an error and left alone) and
``RENAME_EXCHANGE`` with it (the old and the new output swap in one step, so a crash leaves one of
them in place, never neither). Where the filesystem or the platform has no ``renameat2``, the same
checks run before a plain rename, and a ``--force`` replacement takes two renames: a crash between
them leaves the old output in ``.NAME.old-*`` beside it, which the next run reports.

Staging directories are named ``.NAME.tmp-PID-…``: a later run into the same output removes those
whose process is gone (a kill -9, a power cut) and says so.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import ConversionError
from ..runtime import libc_function, phase, record_written, signals_held

logger = logging.getLogger(__name__)

RENAME_NOREPLACE, RENAME_EXCHANGE = 1, 2
_AT_FDCWD = -100


def check_output_dir(path: str | Path, *, force: bool, keep: Iterable[str | Path] = ()) -> Path:
    """Refuse an existing output directory unless ``force``, a path that is a file, and an output that
    is, or holds, one of the paths to ``keep`` (the source: ``--force`` would delete it)."""
    path = Path(path)
    try:
        return _checked_output_dir(path, force=force, keep=keep)
    except OSError as error:  # a name the filesystem cannot take, a directory we may not read…
        raise ConversionError(_unwritable(path, error)) from None


def _checked_output_dir(path: Path, *, force: bool, keep: Iterable[str | Path]) -> Path:
    if path.name in ("", ".", ".."):
        raise ConversionError(f"{path} names no directory of its own; give the output a name (e.g. out/model).")
    if path.is_symlink() and not path.exists():
        raise ConversionError(f"{path} is a dangling symbolic link; remove it or choose another output path.")
    for kept in keep:
        if Path(kept).exists() and _is_within(Path(kept), path):
            raise ConversionError(
                f"The output {path} is {'the source itself' if _same(Path(kept), path) else 'a directory that holds the source'} "
                f"({kept}), which writing it (or --force) would destroy; choose an output outside the source."
            )
    if path.exists() and not path.is_dir():
        raise ConversionError(f"{path} exists and is a file; choose a directory path for the output.")
    if path.exists() and not force:
        raise ConversionError(
            f"Output directory {path} already exists; choose another path or pass --force to replace it."
        )
    return path


def check_run_directory(path: str | Path, *, resume: bool = False, keep: Iterable[str | Path] = ()) -> Path:
    """A training run's directory: not a file, not holding one of its inputs (``keep``), and not in use (not
    empty) unless the run is resumed."""
    path = Path(path)
    check_output_dir(path, force=True, keep=keep)
    if path.is_dir() and any(path.iterdir()) and not resume:
        raise ConversionError(
            f"{path} is in use (not empty); pass --resume to continue the run in it, or choose a new directory."
        )
    return path


def check_report_path(path: str | Path, option: str) -> Path:
    """A report file (``--json``, ``--plot``) that can be written: not a directory, in a directory that exists."""
    path = Path(path)
    if path.is_dir():
        raise ConversionError(f"{option} {path} is a directory; give a file name (e.g. {path / 'results'}).")
    if not path.parent.is_dir():
        raise ConversionError(
            f"{option} {path}: the directory {path.parent} does not exist; create it or choose another file."
        )
    return path


def _same(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve()


def _is_within(inner: Path, outer: Path) -> bool:
    inner, outer = inner.resolve(), outer.resolve()
    return inner == outer or outer in inner.parents


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_normal_permissions(directory: Path) -> None:
    """Files and folders under ``directory`` get the user's usual permissions (``0666``/``0777`` less the
    umask): transformers writes model.safetensors as 0600, through a private temporary file."""
    mask = _umask()
    for path in [directory, *directory.rglob("*")]:
        path.chmod((0o777 if path.is_dir() else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_output_dir(path: str | Path, *, force: bool = False, keep: Iterable[str | Path] = ()) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; move it to ``path`` if the block succeeds.

    On any error (a full disk, a signal, a failed verification) the temporary directory is removed
    and ``path`` is left as it was. With ``force``, an existing ``path`` is replaced only after the
    new contents are complete; without it, a ``path`` that appeared meanwhile is an error.
    """
    path = check_output_dir(path, force=force, keep=keep)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale_staging(path)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    except OSError as error:
        raise ConversionError(_unwritable(path, error)) from None
    try:
        yield staging
        give_normal_permissions(staging)
        phase("moving")  # a stop requested meanwhile (even one Python dropped) leaves nothing in place
        with signals_held():  # moved and recorded together: what the command reports when stopped is true
            _move_into_place(staging, path, force=force)
            record_written(path)
    except OSError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise ConversionError(_unwritable(path, error)) from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def require_free_space(staging: Path, needed: int) -> None:
    """Refuse to start writing ``needed`` bytes where there is not room for them (a full disk midway
    would be cleaned up too, but only after minutes of work)."""
    free = shutil.disk_usage(staging).free
    if needed > free:
        raise ConversionError(
            f"No space left on the device of {staging.parent}: need {readable_size(needed)}, "
            f"{readable_size(free)} free; free some space or write elsewhere."
        )


def _unwritable(path: Path, error: OSError) -> str:
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"No space left on the device of {path.parent} to write {path.name}; free some space or write elsewhere."
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"Cannot write to {path.parent} ({os.strerror(error.errno)}); choose an output directory you can write to."
        )
    if error.errno == errno.ENAMETOOLONG:
        return f"The output name {path.name[:40]}… is too long for the filesystem; choose a shorter one."
    return f"Could not write {path} ({os.strerror(error.errno) if error.errno else error}); nothing was written."


def _move_into_place(staging: Path, path: Path, *, force: bool) -> None:
    if force and path.exists():
        if renameat2(staging, path, RENAME_EXCHANGE):
            _remove(staging)  # now the old output (a directory, or a link to one)
            return
        retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
        path.rename(retired / path.name)  # a crash before the next line leaves the old output in `retired`
        staging.rename(path)
        _remove(retired)
        return
    try:
        if renameat2(staging, path, RENAME_NOREPLACE):
            return
    except FileExistsError:
        raise _appeared(path) from None
    if path.exists() or path.is_symlink():  # without renameat2: checked, then renamed (a short window)
        raise _appeared(path)
    staging.rename(path)


def _remove(path: Path) -> None:
    """Remove a directory tree, or the symbolic link that stands where one was (not what it points to)."""
    if path.is_symlink():
        path.unlink()
    else:
        shutil.rmtree(path, ignore_errors=True)


def readable_size(size: float) -> str:
    """Bytes as people read them: ``512 bytes``, ``3.4 KB``, ``12 MB``, ``1.2 GB``."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if size >= scale:
            return f"{size / scale:,.1f} {unit}" if size < 10 * scale else f"{size / scale:,.0f} {unit}"
    return f"{int(size)} bytes"


def _appeared(path: Path) -> ConversionError:
    return ConversionError(
        f"{path} appeared while this ran (another run's output, or yours) and was left alone; the new result was "
        "discarded: run again with another output, or with --force to replace it."
    )


def renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``; ``False`` where the platform or filesystem has none."""
    function = libc_renameat2()
    if function is None:
        return False
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP):
        return False
    if code == errno.EEXIST or (code == errno.ENOTEMPTY and flags == RENAME_NOREPLACE):
        raise FileExistsError(code, os.strerror(code), str(target))
    raise OSError(code, os.strerror(code), str(target))


def libc_renameat2():
    return libc_function("renameat2", (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint))


def _clean_stale_staging(path: Path) -> None:
    """Remove the staging directories of runs into ``path`` whose process is gone; report a hidden old output."""
    for leftover in sorted(path.parent.glob(f".{path.name}.tmp-*")):
        pid = leftover.name[len(f".{path.name}.tmp-") :].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(leftover, ignore_errors=True)
            logger.warning("Removed %s, the unfinished output of an interrupted run (process %s).", leftover, pid)
    for hidden in sorted(path.parent.glob(f".{path.name}.old-*")):
        logger.warning(
            "%s holds the previous %s of a --force replacement that was interrupted; move %s back if you need it, "
            "then delete %s.", hidden, path.name, hidden / path.name, hidden,
        )  # fmt: skip


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def write_text_atomically(path: str | Path, text: str) -> Path:
    """Write ``path`` whole or not at all (a temporary file beside it, renamed over it), and say why not in one
    sentence (a directory in its place, a read-only or full filesystem)."""
    path = Path(path)
    if path.is_dir():
        raise ConversionError(f"{path} is a directory; give a file name for it (e.g. {path / 'results.json'}).")
    if not path.parent.is_dir():
        raise ConversionError(f"The directory {path.parent} does not exist; create it or choose another file.")
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        staging.write_text(text, encoding="utf-8")
        os.replace(staging, path)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise ConversionError(_unwritable(path, error)) from None
    return path


def recorded_options(directory: str | Path) -> dict | None:
    """The options a saved conversion was made with, from its ``verification.json`` (``None``: unknown);
    for a model trained since with only the position rows beyond N (``training.json``), with
    ``positions_trained_beyond: N`` added."""
    options = _json_object(Path(directory) / "verification.json").get("options")
    if not options:
        training = _json_object(Path(directory) / "training.json")
        trained, conversion = training.get("positions_trained_beyond"), training.get("conversion_options")
        if isinstance(trained, int) and isinstance(conversion, dict) and conversion:
            return {**conversion, "positions_trained_beyond": trained}
    return options if isinstance(options, dict) and options else None


def _json_object(path: Path) -> dict[str, Any]:
    """A JSON file's object, or ``{}`` when it is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
