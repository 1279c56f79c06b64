"""Writing results: into a temporary directory first, renamed into place only when complete."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConversionError


def check_output_dir(path: str | Path, *, force: bool) -> Path:
    """Refuse an existing output directory unless ``force``; refuse a path that is a file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConversionError(f"{path} exists and is a file; choose a directory path for the output.")
    if path.exists() and not force:
        raise ConversionError(
            f"Output directory {path} already exists; choose another path or pass --force (force=True) to replace it."
        )
    return path


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
def atomic_output_dir(path: str | Path, *, force: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary directory beside ``path``; move it to ``path`` if the block succeeds.

    On any error the temporary directory is removed and ``path`` is left as it was. With ``force``,
    an existing ``path`` is replaced only after the new contents are complete.
    """
    path = check_output_dir(path, force=force)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield staging
        give_normal_permissions(staging)
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-", dir=path.parent))
            path.rename(retired / path.name)
            staging.rename(path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            staging.rename(path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def save_conversion(conversion, report, path: str | Path, *, force: bool = False) -> Path:
    """Write model (safetensors), tokenizer, ``verification.json`` and ``README.md`` atomically."""
    with atomic_output_dir(path, force=force) as staging:
        conversion.model.save_pretrained(staging)
        if conversion.tokenizer is not None:
            conversion.tokenizer.save_pretrained(staging)
        write_report_and_card(conversion, report, staging)
    return Path(path)


def write_report_and_card(conversion, report, directory: Path) -> None:
    """``verification.json`` (when verified) and the ``README.md`` model card."""
    from .card import render_card

    if report is not None:
        (directory / "verification.json").write_text(report.to_json() + "\n", encoding="utf-8")
    (directory / "README.md").write_text(render_card(conversion, report), encoding="utf-8")
