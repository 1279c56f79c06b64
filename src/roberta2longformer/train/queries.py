"""Queries of long-document retrieval: passages cut from the documents themselves, or given as JSON Lines.

Standard library only: the embedding task declares its evaluation with these before anything heavy loads.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConversionError

PLACES = ("start", "middle", "end")


@dataclass
class Query:
    text: str
    document: int
    place: str = "given"
    #: Where the passage starts in its document, in words (generated queries only).
    word: int = -1


def _json_row(line: str, path: Path, number: int) -> dict:
    try:
        row = json.loads(line)
    except ValueError:
        raise ConversionError(f"{path} line {number} is not JSON; give one JSON object per line.") from None
    if not isinstance(row, dict):
        raise ConversionError(f"{path} line {number} is not a JSON object; give one object per line.")
    return row


def generated_queries(texts: Sequence[str], passage_words: int, seed: int) -> list[Query]:
    """Per document long enough: one passage from each third (start, middle, end), at a seeded offset."""
    generator = random.Random(seed)
    queries = []
    for index, text in enumerate(texts):
        words = text.split()
        third = len(words) // 3
        if third < passage_words:
            continue  # too short to have three distinct passages
        for place, begin in zip(PLACES, (0, third, 2 * third)):
            start = begin + generator.randrange(0, third - passage_words + 1)
            queries.append(Query(" ".join(words[start : start + passage_words]), index, place, start))
    if not queries:
        raise ConversionError(
            f"No document has three passages of {passage_words} words; give longer documents or a smaller --passage-words."
        )
    return queries


def given_queries(path: Path, ids: Sequence[str]) -> list[Query]:
    index = {doc: i for i, doc in enumerate(ids)}
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        row = _json_row(line, path, number)
        if "query" not in row or "document" not in row:
            raise ConversionError(f"{path} line {number} needs a 'query' and a 'document' (a document id).")
        if str(row["document"]) not in index:
            raise ConversionError(
                f"{path} line {number} names the document {row['document']!r}, which is not in --data; "
                "use the ids of the documents given (file names, or their 'id' field)."
            )
        queries.append(Query(str(row["query"]), index[str(row["document"])]))
    if not queries:
        raise ConversionError(f"{path} has no queries; give one JSON object per line.")
    return queries
