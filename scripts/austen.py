"""Jane Austen's six novels (public domain) as chapter files, fetched from Debian's r-cran-janeaustenr.

Data preparation, not library code: ``python scripts/austen.py DIR`` writes the chapters; the demo, the
built-in model's recipe and the experiments import :func:`fetch_austen` from here.

The package stores each novel as an R character vector of hard-wrapped lines in an R lazy-load
database (``Rdata.rdx`` index, ``Rdata.rdb`` objects). We read it with ``rdata`` (no R needed),
join lines back into paragraphs and split the novels into chapters, one file each: long
documents of 1.8k–3.2k words. Persuasion is the held-out novel; the other five are for training.
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import tempfile
import warnings
import zlib
from pathlib import Path

from roberta2longformer.errors import ConversionError

NOVELS = ("emma", "mansfieldpark", "northangerabbey", "persuasion", "prideprejudice", "sensesensibility")
HELD_OUT = "persuasion"
_DATA = "usr/lib/R/site-library/janeaustenr/data"
_CHAPTER = re.compile(r"^(CHAPTER|Chapter)\s+([IVXLC\d]+)\.?\s*$")


def fetch_austen(directory: str | Path) -> Path:
    """``directory/train/*.txt`` (five novels) and ``directory/heldout/*.txt`` (Persuasion), by chapter.

    Idempotent: a directory that already holds both parts is returned as it is.
    """
    directory = Path(directory)
    if (directory / "train").is_dir() and (directory / "heldout").is_dir():
        return directory
    novels = _read_novels(_download_package(directory))
    staging = Path(tempfile.mkdtemp(prefix=".austen-", dir=directory.parent if directory.parent.exists() else None))
    try:
        for name, lines in novels.items():
            part = staging / ("heldout" if name == HELD_OUT else "train")
            part.mkdir(exist_ok=True)
            for number, chapter in enumerate(split_chapters(lines), 1):
                (part / f"{name}-{number:02d}.txt").write_text(chapter, encoding="utf-8")
        directory.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(directory, ignore_errors=True)
        staging.rename(directory)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def _download_package(directory: Path) -> Path:
    work = Path(tempfile.mkdtemp(prefix="janeaustenr-"))
    command = "apt-get download r-cran-janeaustenr || (apt-get update -qq && apt-get download r-cran-janeaustenr)"
    result = subprocess.run(["bash", "-c", command], cwd=work, capture_output=True, text=True)
    debs = list(work.glob("r-cran-janeaustenr*.deb"))
    if result.returncode != 0 or not debs:
        raise ConversionError(
            "Could not download the Debian package r-cran-janeaustenr (apt-get download failed: "
            f"{(result.stderr or result.stdout).strip().splitlines()[-1:] or ['no output']}), which the Austen texts "
            f"come from; without Debian's archive, put plain-text chapters (any .txt files) in {directory}/train and "
            f"{directory}/heldout and run again: they are used as they are."
        )
    subprocess.run(["dpkg", "-x", str(debs[0]), str(work / "x")], check=True)
    return work / "x" / _DATA


def _read_novels(data: Path) -> dict[str, list[str]]:
    try:
        import rdata
    except ImportError:
        raise ConversionError("Reading the Austen texts needs the rdata package (pip install rdata).") from None
    warnings.filterwarnings("ignore", message="Unknown file type: assumed RDS")  # rdata on lazy-load objects
    raw = (data / "Rdata.rdx").read_bytes()
    try:
        index_bytes = gzip.decompress(raw)
    except OSError:
        index_bytes = zlib.decompress(raw)
    index = rdata.conversion.convert(rdata.parser.parse_data(index_bytes))
    database = (data / "Rdata.rdb").read_bytes()
    novels = {}
    for name, (offset, length) in index["variables"].items():
        blob = database[int(offset) : int(offset) + int(length)]
        vector = rdata.conversion.convert(rdata.parser.parse_data(zlib.decompress(blob[4:])))
        novels[str(name)] = [str(line) for line in vector]
    return {name: novels[name] for name in NOVELS}


def paragraphs(lines: list[str]) -> list[str]:
    """Hard-wrapped lines joined back into paragraphs (blank lines separate them)."""
    result, current = [], []
    for line in lines:
        if line.strip():
            current.append(line.strip())
        elif current:
            result.append(" ".join(current))
            current = []
    if current:
        result.append(" ".join(current))
    return result


def split_chapters(lines: list[str]) -> list[str]:
    """The chapters of a novel as texts (paragraphs separated by newlines), front matter dropped."""
    chapters: list[list[str]] = []
    for paragraph in paragraphs(lines):
        if _CHAPTER.match(paragraph):
            chapters.append([])
        elif chapters:
            chapters[-1].append(paragraph)
    return ["\n".join(chapter) + "\n" for chapter in chapters if chapter]


if __name__ == "__main__":  # python scripts/austen.py DIR
    import sys

    target = fetch_austen(sys.argv[1] if len(sys.argv) > 1 else ".cache/austen")
    print(
        f"{target}/train: {len(list((target / 'train').glob('*.txt')))} chapters; "
        f"{target}/heldout: {len(list((target / 'heldout').glob('*.txt')))} chapters"
    )
