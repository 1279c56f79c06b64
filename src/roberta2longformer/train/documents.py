"""One reader of documents and examples for every command, with one set of messages.

Sources are files, directories (searched recursively for the files below), or a ``datasets`` name:

- text (``.txt``) and Markdown (``.md``): one document per file, its id the file's path under the
  directory given (or its name);
- JSON Lines (``.jsonl``): one object per line, its id the ``id`` field or ``FILE:LINE``;
- JSON (``.json``, an array of objects or JSON Lines) and CSV (``.csv``): one example per row or line,
  read with ``datasets`` (types inferred as it does), its id the ``id`` field or ``FILE:ROW``;
- ``NAME[:SPLIT]`` of a ``datasets`` dataset, when it is no local path (online only; no code of its own).

The result is a ``datasets.Dataset`` with an ``id`` and a ``text`` column (from ``text_field``) and the
other fields asked for. A document whose text is empty is left out; one whose text is not text (a
number, ``null``) is an error, never the string ``"None"``.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.locations import check_hub_reachable
from ..errors import ConversionError

if TYPE_CHECKING:
    pass

TEXT_SUFFIXES = (".txt", ".md")
ROW_SUFFIXES = (".jsonl", ".json", ".csv")
SUFFIXES = (*TEXT_SUFFIXES, *ROW_SUFFIXES)


def read_documents(
    sources: Sequence[str | Path] | str | Path,
    *,
    what: str = "--data",
    text_field: str = "text",
    id_field: str = "id",
    fields: Mapping[str, str] | None = None,
    every_field: bool = False,
    split: str = "train",
):
    """The documents of ``sources`` as a ``datasets.Dataset`` (``id``, ``text`` and each of ``fields``).

    ``what`` names the sources in messages (the option that gave them); ``fields`` maps each further field
    a caller needs to the option that names it (``{"label": "--label-field"}``), so that a missing one is
    refused with that option; ``every_field`` keeps all the others too (examples with their labels).
    ``split``: the split of a ``datasets`` name given without one.
    """
    import datasets  # a second of imports: when documents are read, not when the command line starts

    sources = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if not sources:
        raise ConversionError(
            f"No documents given ({what}); give text, Markdown, JSON Lines or CSV files, or directories."
        )
    rows: list[dict[str, Any]] = []
    for source in sources:
        rows += _read_source(str(source), what, text_field, id_field, split)
    kept = _checked_rows(rows, what, text_field, sources)
    wanted = {**(fields or {})}
    _require_fields(kept, wanted, what, sources)
    names = sorted({key for row in kept for key in row} - {"id", text_field}) if every_field else list(wanted)
    columns = {"id": [row["id"] for row in kept], "text": [row[text_field] for row in kept]}
    columns.update({name: [row.get(name) for row in kept] for name in names if name not in ("id", "text")})
    try:
        return datasets.Dataset.from_dict(columns)
    except (TypeError, ValueError, datasets.exceptions.DatasetGenerationError) as error:
        raise ConversionError(
            f"{what} {_named(sources)}: the fields {', '.join(names)} do not have one type in every row "
            f"({_first_line(error)}); give each field values of one kind."
        ) from None


def check_sources(sources: Sequence[str | Path], what: str) -> None:
    """Refuse, before anything is read (or imported), a source that is neither an existing file or directory
    nor a ``datasets`` name."""
    if not sources:
        raise ConversionError(
            f"No documents given ({what}); give text, Markdown, JSON Lines or CSV files, or directories."
        )
    for source in map(str, sources):
        path = Path(source)
        if not path.exists() and (source.startswith((".", "/", "~")) or path.suffix in SUFFIXES or "\\" in source):
            raise ConversionError(f"{what} {source} does not exist; give existing files or directories.")


def _read_source(source: str, what: str, text_field: str, id_field: str, split: str) -> list[dict[str, Any]]:
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
        if not files:
            raise ConversionError(f"{what} {source} holds no documents ({', '.join(SUFFIXES)} files); give such files.")
        return [row for file in files for row in _read_file(file, file.relative_to(path), what, text_field, id_field)]
    if path.exists():
        return _read_file(path, Path(path.name), what, text_field, id_field)
    check_sources([source], what)  # a missing path is refused: what is left is a datasets name
    return _hub_rows(source, what, text_field, id_field, split)


def _read_file(file: Path, name: Path, what: str, text_field: str, id_field: str) -> list[dict[str, Any]]:
    """The rows of one file; ``name`` is how its ids name it."""
    if file.suffix not in SUFFIXES:
        raise ConversionError(
            f"{what} {file} is not a file of documents ({', '.join(SUFFIXES)}); give text, Markdown, JSON Lines, "
            "JSON or CSV files."
        )
    try:
        if file.suffix in TEXT_SUFFIXES:
            return [{"id": str(name.with_suffix("")), text_field: file.read_text(encoding="utf-8")}]
        if file.suffix == ".jsonl":
            return _json_lines(file, name, what, id_field)
        if file.suffix == ".csv":
            return _csv_rows(file, name, id_field)
        return _json_rows(file, name, what, id_field)
    except UnicodeDecodeError:
        raise ConversionError(f"{what} {file} is not UTF-8 text; give text files (UTF-8).") from None
    except OSError as error:
        raise ConversionError(
            f"Could not read {what} {file} ({error.strerror or error}); give a readable file."
        ) from None


def _json_lines(file: Path, name: Path, what: str, id_field: str) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise ConversionError(f"{what} {file} line {number} is not JSON; give one JSON object per line.") from None
        if not isinstance(row, dict):
            raise ConversionError(f"{what} {file} line {number} is not a JSON object; give one object per line.")
        rows.append(_with_id(row, id_field, f"{name}:{number}"))
    return rows


def _json_rows(file: Path, name: Path, what: str, id_field: str) -> list[dict[str, Any]]:
    """A ``.json`` file: an array of objects, or JSON Lines under that suffix."""
    text = file.read_text(encoding="utf-8")
    try:
        loaded = json.loads(text)
    except ValueError:
        return _json_lines(file, name, what, id_field)
    except RecursionError:
        raise ConversionError(f"{what} {file} nests too deeply to be examples; give an array of objects.") from None
    if not isinstance(loaded, list) or not all(isinstance(row, dict) for row in loaded):
        raise ConversionError(f"{what} {file} is not an array of JSON objects; give one object per example.")
    return [_with_id(row, id_field, f"{name}:{number}") for number, row in enumerate(loaded, 1)]


def _csv_rows(file: Path, name: Path, id_field: str) -> list[dict[str, Any]]:
    with file.open(newline="", encoding="utf-8") as handle:
        return [
            _with_id(dict(row), id_field, f"{name}:{number}") for number, row in enumerate(csv.DictReader(handle), 1)
        ]


def _with_id(row: dict[str, Any], id_field: str, fallback: str) -> dict[str, Any]:
    given = row.get(id_field)
    return {**row, "id": str(given) if given is not None else fallback}


def _hub_rows(name: str, what: str, text_field: str, id_field: str, split: str) -> list[dict[str, Any]]:
    import datasets  # as in read_documents

    dataset, _, wanted = name.partition(":")
    check_hub_reachable(dataset)
    try:
        loaded = datasets.load_dataset(dataset, split=wanted or split)
    except Exception as error:  # offline, unknown name, no such split…: what the user can act on is the message
        raise ConversionError(
            f"{what} {name} is not a local path and could not be loaded as a datasets name ({_first_line(error)}); "
            "give local files, or go online for datasets names."
        ) from None
    return [_with_id(dict(row), id_field, f"{name}:{number}") for number, row in enumerate(loaded, 1)]


def _checked_rows(rows: list[dict[str, Any]], what: str, text_field: str, sources: list) -> list[dict[str, Any]]:
    """Rows with text: a text that is not a string is refused; empty ones are left out."""
    if rows and all(text_field not in row for row in rows):
        found = sorted({key for row in rows for key in row if key != "id"})
        raise ConversionError(
            f"{what} {_named(sources)} has no {text_field!r} field (it has {', '.join(found) or 'none'}); "
            "name the text field with --text-field."
        )
    for row in rows:
        text = row.get(text_field)
        if text is not None and not isinstance(text, str):
            raise ConversionError(
                f"{what} {row['id']}: the text field {text_field!r} holds {json.dumps(text)[:40]}, not text; "
                "give every document its text as a string."
            )
        if text is None:
            raise ConversionError(f"{what} {row['id']} has no {text_field!r} text; give every document one.")
    kept = [row for row in rows if row[text_field].strip()]
    if not kept:
        raise ConversionError(f"{what} {_named(sources)} holds no text; give files with text in them.")
    ids = [row["id"] for row in kept]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise ConversionError(
            f"{what}: two documents have the id {duplicate!r}; give each document its own id (or file name)."
        )
    return kept


def require_fields(dataset, fields: Mapping[str, str], what: str, source: str) -> None:
    """Refuse read documents that lack one of ``fields`` (field → the option that names it) in every row."""
    for name, option in fields.items():
        values = dataset[name] if name in dataset.column_names else []
        if not values or all(value is None for value in values):
            found = [column for column in dataset.column_names if column != "id"]
            raise ConversionError(
                f"{what} {source} has no {name!r} field (it has {', '.join(found)}); name it with {option}."
            )
        missing = next((i for i, value in enumerate(values) if value is None), None)
        if missing is not None:
            raise ConversionError(
                f"{what} {dataset['id'][missing]} has no {name!r}; give every example one (or leave it out)."
            )


def _require_fields(rows: list[dict[str, Any]], fields: Mapping[str, str], what: str, sources: list) -> None:
    found = sorted({key for row in rows for key in row if key != "id"})
    for name, option in fields.items():
        if all(name not in row for row in rows):
            raise ConversionError(
                f"{what} {_named(sources)} has no {name!r} field (it has {', '.join(found)}); name it with {option}."
            )


def _named(sources: list) -> str:
    return ", ".join(map(str, sources[:3])) + (" …" if len(sources) > 3 else "")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__
