"""Late chunking (Günther et al., 2024): one forward pass of a document gives its vector and its chunks' vectors.

Each chunk's vector is the mean of the token states inside its span, computed while the model reads the
whole document, so every chunk carries the context of the document around it. A document longer than the
model is read in overlapping macro windows ("long late chunking"): each token keeps the state of the window
in which it sits farthest from an edge, so it is read with the most context on both sides.

Works on any sentence-transformers model through its own modules: the first (the Transformer) gives the
token states; the document vector is the model's own pooling (and normalisation) over all of them, exactly
what ``SentenceTransformer.encode`` gives for a document that fits; a chunk's vector is the mean of its
tokens (late chunking pools by mean whatever the model's own pooling), normalised when the model normalises.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConversionError

#: How chunk boundaries are chosen: a fixed number of tokens, or the text's sentences or paragraphs.
CHUNKINGS = ("tokens", "sentences", "paragraphs")
_BOUNDARIES = {"sentences": re.compile(r"(?<=[.!?])\s+"), "paragraphs": re.compile(r"\n\s*\n")}


@dataclass(frozen=True)
class Chunk:
    """One chunk of one document: its place in the text (characters) and in the tokens."""

    document: str
    index: int
    start: int
    end: int
    first_token: int
    last_token: int  # exclusive
    text: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EmbeddedDocument:
    id: str
    tokens: int
    windows: int
    vector: np.ndarray
    chunks: list[Chunk]
    chunk_vectors: np.ndarray


def text_pieces(text: str, chunking: str) -> list[tuple[int, int]]:
    """Character spans of ``text``'s sentences or paragraphs, whitespace between them left out."""
    spans, start = [], 0
    for gap in _BOUNDARIES[chunking].finditer(text):
        spans.append((start, gap.start()))
        start = gap.end()
    spans.append((start, len(text)))
    return [(a, b) for a, b in spans if text[a:b].strip()]


def token_spans(offsets: Sequence[tuple[int, int]], text: str, chunking: str, size: int) -> list[tuple[int, int]]:
    """Token spans (first, last exclusive) of each chunk: ``size`` tokens each, or every sentence or
    paragraph (one longer than ``size`` tokens is cut into pieces of ``size``; tokens between pieces
    belong to the piece they start in)."""
    count = len(offsets)
    if chunking == "tokens":
        return [(a, min(a + size, count)) for a in range(0, count, size)]
    starts = [a for a, _ in text_pieces(text, chunking)]
    first_tokens, token = [], 0
    for start in starts:  # the first token that starts at or after each piece (offsets ascend)
        while token < count and offsets[token][0] < start:
            token += 1
        first_tokens.append(token)
    bounds = [*dict.fromkeys(t for t in first_tokens if t < count)] or [0]
    bounds[0] = 0
    spans = []
    for a, b in zip(bounds, [*bounds[1:], count]):
        spans += [(x, min(x + size, b)) for x in range(a, b, size)]
    return spans


def macro_windows(count: int, inner: int, overlap: int) -> list[tuple[int, int]]:
    """Token spans of the overlapping windows that read ``count`` tokens, ``inner`` at a time."""
    if count <= inner:
        return [(0, count)]
    step = inner - overlap
    starts = list(range(0, count - inner, step)) + [count - inner]
    return [(s, s + inner) for s in dict.fromkeys(starts)]


def owner_windows(count: int, windows: Sequence[tuple[int, int]]) -> np.ndarray:
    """For each token, the window in which it sits farthest from an edge (most context on both sides)."""
    best = np.zeros(count, dtype=np.int64)
    margin = np.full(count, -1)
    positions = np.arange(count)
    for index, (a, b) in enumerate(windows):
        inside = positions[a:b]
        room = np.minimum(inside - a, b - 1 - inside)
        better = room > margin[a:b]
        best[a:b][better], margin[a:b][better] = index, room[better]
    return best


class LateChunker:
    """A sentence-transformers model that embeds documents and their chunks in one pass (per macro window)."""

    def __init__(self, model: Any, *, chunking: str = "tokens", chunk_size: int = 256, overlap: int | None = None):
        if chunking not in CHUNKINGS:
            raise ConversionError(f"Unknown chunking {chunking!r}; choose from {', '.join(CHUNKINGS)}.")
        if chunk_size < 1:
            raise ConversionError(f"The chunk size must be at least 1 token, not {chunk_size}.")
        self.model, self.chunking, self.chunk_size = model, chunking, chunk_size
        self.tokenizer = model.tokenizer
        self.length = int(model.max_seq_length)
        self.prefix, self.suffix = _special_tokens_around(self.tokenizer)
        self.inner = self.length - len(self.prefix) - len(self.suffix)
        if self.inner < 2:
            raise ConversionError(f"The model reads {self.length} tokens: too few to read documents in windows.")
        self.overlap = self.inner // 4 if overlap is None else overlap
        if not 0 <= self.overlap < self.inner:
            raise ConversionError(
                f"The window overlap must be at least 0 and below the {self.inner} tokens a window reads, "
                f"not {self.overlap}."
            )
        self.normalises = any(type(m).__name__ == "Normalize" for m in model)

    def embed(self, document_id: str, text: str) -> EmbeddedDocument:
        import torch  # the model is loaded already: torch is too

        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
        windows = macro_windows(len(ids), self.inner, self.overlap)
        states, ends = [], []
        with torch.inference_mode():
            for a, b in windows:
                window = self._token_states(self.prefix + ids[a:b] + self.suffix)
                states.append(window[len(self.prefix) : len(self.prefix) + b - a])
                ends.append(window)
            owners = owner_windows(len(ids), windows)
            content = torch.stack([states[w][t - windows[w][0]] for t, w in enumerate(owners)]) if ids else None
            whole = torch.cat(
                [ends[0][: len(self.prefix)], *([content] if content is not None else []),
                 ends[-1][len(ends[-1]) - len(self.suffix) :]]
            )  # fmt: skip
            vector = self._pooled(whole)
            spans = token_spans(offsets, text, self.chunking, self.chunk_size) if ids else []
            chunk_vectors = [content[a:b].mean(0) for a, b in spans]
            if self.normalises and chunk_vectors:
                chunk_vectors = [torch.nn.functional.normalize(v, dim=-1) for v in chunk_vectors]
        chunks = [
            Chunk(document_id, i, offsets[a][0], offsets[b - 1][1], a, b, text[offsets[a][0] : offsets[b - 1][1]])
            for i, (a, b) in enumerate(spans)
        ]
        hidden = whole.shape[-1]
        matrix = torch.stack(chunk_vectors).float().cpu().numpy() if chunk_vectors else np.zeros((0, hidden), "f4")
        return EmbeddedDocument(document_id, len(ids), len(windows), vector, chunks, matrix)

    def embed_all(self, ids: Sequence[str], texts: Sequence[str], progress: bool = True) -> Iterator[EmbeddedDocument]:
        from tqdm.auto import tqdm  # transformers' dependency, loaded with it already

        for document_id, text in tqdm(list(zip(ids, texts)), desc="Embedding documents", disable=not progress):
            yield self.embed(document_id, text)

    def _token_states(self, ids: list[int]) -> Any:
        import torch  # the model is loaded already: torch is too

        device = self.model.device
        features = {
            "input_ids": torch.tensor([ids], device=device),
            "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=device),
        }
        return self.model[0](features)["token_embeddings"][0]

    def _pooled(self, states: Any) -> np.ndarray:
        """The model's own pooling and normalisation (its modules after the first) over ``states``."""
        import torch  # the model is loaded already: torch is too

        features = {
            "token_embeddings": states[None],
            "attention_mask": torch.ones(1, len(states), dtype=torch.long, device=states.device),
        }
        for module in list(self.model)[1:]:
            features = module(features)
        return features["sentence_embedding"][0].float().cpu().numpy()


def _special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text's own (``[CLS]``…``[SEP]``, ``<s>``…``</s>``): found
    around a word's tokens (transformers 5's fast tokenizers have no ``build_inputs_with_special_tokens``)."""
    with_special = tokenizer("word")["input_ids"]
    own = tokenizer("word", add_special_tokens=False)["input_ids"]
    place = next(i for i in range(len(with_special)) if with_special[i : i + len(own)] == own)
    return list(with_special[:place]), list(with_special[place + len(own) :])


#: How ``embed`` writes the documents' and chunks' rows (the vectors always go to ``.npy`` beside them).
FORMATS = ("jsonl", "parquet")


def write_embeddings(
    documents: Iterator[EmbeddedDocument], directory: Path, *, file_format: str, settings: dict[str, Any]
) -> dict[str, Any]:
    """``documents.{jsonl,parquet}`` (id, tokens, windows, chunks) with ``document_embeddings.npy`` row for
    row, ``chunks.{jsonl,parquet}`` (document, index, character and token span, text) with
    ``chunk_embeddings.npy``, and ``embed.json`` (the settings and the counts)."""
    import datasets  # the field's writer of Parquet: only when embeddings are written

    if file_format not in FORMATS:
        raise ConversionError(f"Unknown format {file_format!r}; choose from {', '.join(FORMATS)}.")
    document_rows, chunk_rows, vectors, chunk_vectors = [], [], [], []
    for document in documents:
        document_rows.append(
            {"id": document.id, "tokens": document.tokens, "windows": document.windows, "chunks": len(document.chunks)}
        )
        chunk_rows += [chunk.to_dict() for chunk in document.chunks]
        vectors.append(document.vector)
        chunk_vectors.append(document.chunk_vectors)
    if not document_rows:
        raise ConversionError("There were no documents to embed; give text, Markdown, JSON Lines or CSV files.")
    for name, rows in (("documents", document_rows), ("chunks", chunk_rows)):
        if file_format == "jsonl":
            (directory / f"{name}.jsonl").write_text(
                "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8"
            )
        else:
            datasets.Dataset.from_list(rows).to_parquet(str(directory / f"{name}.parquet"))
    np.save(directory / "document_embeddings.npy", np.stack(vectors).astype(np.float32))
    np.save(directory / "chunk_embeddings.npy", np.concatenate(chunk_vectors).astype(np.float32))
    summary = {**settings, "documents": len(document_rows), "chunks": len(chunk_rows),
               "dimensions": int(vectors[0].shape[-1])}  # fmt: skip
    (directory / "embed.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return summary
