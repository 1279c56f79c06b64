"""Long-document retrieval, measured: does a long embedder find the document a passage came from?

Every document is embedded whole (up to the model's length), or in windows of the model's length,
as users of a short model do: ``chunks="mean"``, the normalised mean of its windows' embeddings (one
vector per document); ``chunks="max"``, its best-matching window (one vector per window, a document
scoring as its best one: "MaxP" in information retrieval); and *late chunking* (:mod:`.late_chunking`):
the document read once (in macro windows when longer than the model), its chunks' vectors pooled from
that pass — ``"late-mean"`` averaged into one vector, ``"late-max"`` the best chunk. Queries are
passages cut from the documents themselves — by default three per document, ``passage_words``
words from its start, middle and end (seeded) — or given as JSON Lines ``{"query", "document"}``.
Each query ranks all documents by cosine similarity; recall@1, recall@10 and the mean reciprocal
rank are reported overall and by where the passage sits (start / middle / end, and inside or beyond
the first ``window_tokens`` tokens: what a short source reads).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import fast
from ..core.loading import load_sentence_transformer
from ..errors import ConversionError
from ..plots import pyplot, save
from ..targets import prepare_attention
from .late_chunking import LateChunker
from .pooling import mean_per_group
from .queries import PLACES, Query
from .synthetic import build_task


@dataclass
class Ranking:
    model: str
    mode: str
    reads: int
    queries: int
    overall: dict[str, float]
    by_place: dict[str, dict[str, float]] = field(default_factory=dict)
    #: What computed the model's attention (``roberta2longformer.fast`` or ``transformers``).
    attention: str = "transformers"

    def to_dict(self) -> dict:
        return asdict(self)


#: ``chunks`` modes: how a document read in windows is scored, and the name its results carry.
CHUNK_MODES = {
    "mean": "windows averaged",
    "max": "best window",
    "late-mean": "late chunks averaged",
    "late-max": "best late chunk",
}


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def cosine_scores(document_embeddings: np.ndarray, query_embeddings: np.ndarray) -> np.ndarray:
    """(queries, documents) cosine similarities."""
    return _unit(query_embeddings) @ _unit(document_embeddings).T


def best_window_scores(
    window_embeddings: np.ndarray, owners: Sequence[int], query_embeddings: np.ndarray, documents: int
) -> np.ndarray:
    """(queries, documents): each document scored by its best-matching window."""
    window_scores = cosine_scores(window_embeddings, query_embeddings)
    owners = np.asarray(owners)
    scores = np.full((len(query_embeddings), documents), -np.inf)
    for document in range(documents):
        scores[:, document] = window_scores[:, owners == document].max(axis=1)
    return scores


def rank_scores(scores: np.ndarray, queries: Sequence[Query]) -> np.ndarray:
    """The rank (1 = first) of each query's own document among all; ties go against it."""
    own = scores[np.arange(len(queries)), [q.document for q in queries]]
    return 1 + (scores > own[:, None]).sum(axis=1)


def rank(document_embeddings: np.ndarray, query_embeddings: np.ndarray, queries: Sequence[Query]) -> np.ndarray:
    """The rank (1 = first) of each query's own document among all, by cosine similarity."""
    return rank_scores(cosine_scores(document_embeddings, query_embeddings), queries)


def metrics(ranks: np.ndarray) -> dict[str, float]:
    if not len(ranks):
        return {}
    return {
        "recall@1": float(np.mean(ranks <= 1)),
        "recall@10": float(np.mean(ranks <= 10)),
        "mrr": float(np.mean(1.0 / ranks)),
        "queries": int(len(ranks)),
    }


def by_place(ranks: np.ndarray, queries: Sequence[Query], inside: Sequence[bool | None]) -> dict[str, dict]:
    """Metrics per passage place, and inside / beyond the short window."""
    groups: dict[str, list[int]] = {}
    for i, (query, within) in enumerate(zip(queries, inside)):
        groups.setdefault(query.place, []).append(i)
        if within is not None:
            groups.setdefault("inside the window" if within else "beyond the window", []).append(i)
    return {name: metrics(ranks[idx]) for name, idx in groups.items()}


def passage_inside(texts: Sequence[str], queries: Sequence[Query], tokenizer, window_tokens: int) -> list[bool | None]:
    """Whether each generated passage starts within the first ``window_tokens`` tokens of its document."""
    inside: list[bool | None] = []
    for query in queries:
        if query.word < 0:
            inside.append(None)
            continue
        before = " ".join(texts[query.document].split()[: query.word])
        inside.append(len(tokenizer(before, add_special_tokens=False)["input_ids"]) + 2 <= window_tokens)
    return inside


class Embedder:
    """A sentence-transformers model (its own pooling and normalisation), or any transformers encoder
    with mean pooling; long models run through the fast attention backend."""

    def __init__(
        self, location: str, *, fast_attention: bool = True, batch_size: int = 8, allow_pickle: bool = False
    ) -> None:
        self.model = load_sentence_transformer(location, allow_pickle=allow_pickle)
        backbone = self.model[0].auto_model
        prepare_attention(backbone, fast_attention)
        self.attention = fast.backend_name(backbone)
        self.batch_size = batch_size
        self.length = self.model.max_seq_length
        self.tokenizer = self.model.tokenizer

    def encode(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        return self.model.encode(
            list(texts), batch_size=self.batch_size, show_progress_bar=progress, convert_to_numpy=True
        )

    def encode_windows(self, texts: Sequence[str], progress: bool = True) -> tuple[np.ndarray, list[int]]:
        """Every window of the model's length of every document embedded, and the document each is from
        (every document has at least one)."""
        inner = self.length - 2
        pieces, owners = [], []
        for index, text in enumerate(texts):
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            for start in range(0, max(len(ids), 1), inner):
                pieces.append(self.tokenizer.decode(ids[start : start + inner]))
                owners.append(index)
        return self.encode(pieces, progress), owners


def chunk_scores(
    mode: str, window_embeddings: np.ndarray, owners: Sequence[int], query_embeddings: np.ndarray, documents: int
) -> np.ndarray:
    """(queries, documents) for a ``chunks`` mode: windows averaged into one vector, or the best window."""
    if mode == "max":
        return best_window_scores(window_embeddings, owners, query_embeddings, documents)
    means, _ = mean_per_group(window_embeddings, owners)
    return cosine_scores(means, query_embeddings)


@dataclass
class LateChunks:
    """Every document read once by :class:`LateChunker`: its chunks' vectors (and the document each is
    from), and the documents' own vectors."""

    vectors: np.ndarray
    owners: list[int]
    documents: np.ndarray
    one_window: bool  # every document read in one window: its vector is what ``encode`` gives


def late_chunks(embedder: Embedder, ids: Sequence[str], texts: Sequence[str], chunk_tokens: int) -> LateChunks:
    """Every late chunk of every document (``chunk_tokens`` tokens each), and the document vectors of the same pass."""
    chunker = LateChunker(embedder.model, chunk_size=chunk_tokens)
    vectors, owners, documents, one_window = [], [], [], True
    for index, document in enumerate(chunker.embed_all(ids, texts, progress=sys.stderr.isatty())):
        if not document.chunks:
            raise ConversionError(f"Document {document.id!r} has no tokens to chunk; leave empty documents out.")
        vectors.append(document.chunk_vectors)
        owners += [index] * len(document.chunks)
        documents.append(document.vector)
        one_window &= document.windows == 1
    return LateChunks(np.concatenate(vectors), owners, np.stack(documents), one_window)


def evaluate_retrieval(
    models: Sequence[str],
    ids: Sequence[str],
    texts: Sequence[str],
    queries: Sequence[Query],
    *,
    chunks: Sequence[str] = (),
    window_tokens: int | None = None,
    fast_attention: bool = True,
    batch_size: int = 8,
    allow_pickle: bool = False,
    chunk_tokens: int = 256,
) -> list[Ranking]:
    """One :class:`Ranking` per model read whole, and per model and ``chunks`` mode (:data:`CHUNK_MODES`)
    read in windows of its length (embedded once for all modes)."""
    unknown = [mode for mode in chunks if mode not in CHUNK_MODES]
    if unknown:
        raise ConversionError(f"Unknown chunks mode {unknown[0]!r}; choose from {', '.join(CHUNK_MODES)}.")
    results = []
    inside: list[bool | None] | None = None
    for name in models:
        embedder = Embedder(name, fast_attention=fast_attention, batch_size=batch_size, allow_pickle=allow_pickle)
        if inside is None:  # the first model's tokenizer measures where passages sit
            inside = passage_inside(texts, queries, embedder.tokenizer, window_tokens or embedder.length)
        query_embeddings = embedder.encode([q.text for q in queries])
        late = [mode for mode in chunks if mode.startswith("late-")]
        read = late_chunks(embedder, ids, texts, chunk_tokens) if late else None
        # A document that fits one window gets from the late-chunking pass exactly the vector encode gives it:
        # one pass instead of two (the whole reading is the costly one for a long model).
        whole = read.documents if read is not None and read.one_window else embedder.encode(texts)
        scored = [("whole", cosine_scores(whole, query_embeddings))]
        early = [mode for mode in chunks if not mode.startswith("late-")]
        if early:
            windows, owners = embedder.encode_windows(texts)
            scored += [
                (CHUNK_MODES[mode], chunk_scores(mode, windows, owners, query_embeddings, len(texts))) for mode in early
            ]
        if read is not None:
            scored += [
                (
                    CHUNK_MODES[mode],
                    chunk_scores(mode.removeprefix("late-"), read.vectors, read.owners, query_embeddings, len(texts)),
                )
                for mode in late
            ]
        for mode, scores in scored:
            ranks = rank_scores(scores, queries)
            results.append(
                Ranking(
                    name,
                    mode,
                    embedder.length,
                    len(queries),
                    metrics(ranks),
                    by_place(ranks, queries, inside),
                    embedder.attention,
                )  # fmt: skip
            )
    return results


def evaluate_synthetic(
    models: Sequence[str],
    task: str,
    lengths: Sequence[int],
    *,
    haystack: Sequence[str] = (),
    seed: int = 0,
    documents: int = 100,
    queries: int = 50,
    **options: Any,
) -> list[tuple[int, Ranking]]:
    """A LongEmbed-style ``task`` (:mod:`.synthetic`) at each length, every model (and ``chunks`` mode) ranking
    the same documents for the same queries; ``options`` go to :func:`evaluate_retrieval`."""
    from transformers import AutoTokenizer  # loaded with the models below anyway

    from ..core.locations import resolve_source

    tokenizer = AutoTokenizer.from_pretrained(resolve_source(models[0]))  # the first model's tokens set the lengths

    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    results = []
    for length in lengths:
        built = build_task(task, length, count, seed=seed, haystack=haystack, documents=documents, queries=queries)
        results += [(length, r) for r in evaluate_retrieval(models, built.ids, built.texts, built.queries, **options)]
    return results


def format_synthetic_table(results: Sequence[tuple[int, Ranking]]) -> str:
    """One row per model and reading, accuracy@1 (recall@1) per length."""
    lengths = list(dict.fromkeys(length for length, _ in results))
    rows: dict[tuple[str, str, int], dict[int, float]] = {}
    for length, r in results:
        rows.setdefault((r.model, r.mode, r.reads), {})[length] = r.overall["recall@1"]
    name_width = max(len("model"), *(len(model) for model, _, _ in rows))
    mode_width = max(len("reading"), *(len(mode) for _, mode, _ in rows))
    lines = [f"{'model':{name_width}} {'reading':{mode_width}} {'reads':>6}" + "".join(f" {n:>7}" for n in lengths)]
    for (model, mode, reads), by_length in rows.items():
        cells = "".join(f" {by_length.get(n, float('nan')):7.3f}" for n in lengths)
        lines.append(f"{model:{name_width}} {mode:{mode_width}} {reads:6d}{cells}")
    return "\n".join(lines) + "\n(accuracy@1 per document length in tokens)"


def _line_label(r: Ranking) -> str:
    return f"{Path(r.model).name} ({r.mode})" if r.mode else Path(r.model).name


def _figure_for_lines(count: int) -> tuple[Any, Any]:
    """A figure whose axes keep the full width, grown by a row per line for the legend below them: a legend
    beside the axes squeezed them to a sliver once the labels were long (a report's method names)."""
    fig = pyplot().figure(figsize=(10, 4.2 + 0.19 * count), layout="constrained")
    return fig, fig.add_subplot()


def _line_style(number: int) -> dict[str, Any]:
    """Twenty colours, and dashes that tell apart lines that coincide (matplotlib's cycle repeats after ten)."""
    return {"color": pyplot().get_cmap("tab20")(number % 20), "linestyle": ("-", "--", ":", "-.")[number % 4]}


def _legend_below(fig: Any, ax: Any) -> None:
    fig.legend(*ax.get_legend_handles_labels(), loc="outside lower center", fontsize=8, ncols=1)


def plot_synthetic(results: Sequence[tuple[int, Ranking]], task: str, path: Path) -> Any:
    """Accuracy@1 against document length, one line per model and reading."""
    lines: dict[str, list[tuple[int, float]]] = {}
    for length, r in results:
        lines.setdefault(_line_label(r), []).append((length, r.overall["recall@1"]))
    fig, ax = _figure_for_lines(len(lines))
    for number, (label, points) in enumerate(lines.items()):
        ax.plot(*zip(*points), marker="o", label=label, **_line_style(number))
    ax.set_xscale("log", base=2)
    lengths = sorted({length for length, _ in results})
    ax.set_xticks(lengths, [f"{n:,}" for n in lengths])
    ax.minorticks_off()
    ax.set_xlabel("document length (tokens)")
    ax.set_ylabel("accuracy@1")
    ax.set_ylim(0, 1.02)
    ax.set_title(f"{task}: is the document that holds the detail ranked first? ({results[0][1].queries} queries)")
    _legend_below(fig, ax)
    return save(fig, path)


def format_table(results: Sequence[Ranking]) -> str:
    """One row per model and reading; recall@1 by passage place, each column headed with its query count."""
    places = [p for p in (*PLACES, "inside the window", "beyond the window") if p in results[0].by_place]
    headers = [f"{p} (n={results[0].by_place[p]['queries']})" for p in places]
    name_width = max(len("model"), *(len(r.model) for r in results))
    mode_width = max(len("reading"), *(len(r.mode) for r in results))
    head = f"{'model':{name_width}} {'reading':{mode_width}} {'reads':>6} {'R@1':>6} {'R@10':>6} {'MRR':>6}"
    head += "".join(f" {header:>{len(header)}}" for header in headers)
    lines = [head]
    for r in results:
        cells = "".join(
            f" {r.by_place.get(p, {}).get('recall@1', float('nan')):>{len(header)}.3f}"
            for p, header in zip(places, headers)
        )
        lines.append(
            f"{r.model:{name_width}} {r.mode:{mode_width}} {r.reads:6d} {r.overall['recall@1']:6.3f} "
            f"{r.overall['recall@10']:6.3f} {r.overall['mrr']:6.3f}{cells}"
        )
    return "\n".join(lines) + (f"\n(overall: {results[0].queries} queries; by place: recall@1)" if places else "")


def plot(results: Sequence[Ranking], path: Path) -> Any:
    """Recall@1 by passage place, one line per model and reading, each point's query count on the axis."""
    places = [p for p in PLACES if p in results[0].by_place]
    fig, ax = _figure_for_lines(len(results))
    for number, r in enumerate(results):
        ax.plot(
            places, [r.by_place[p]["recall@1"] for p in places], marker="o", label=_line_label(r), **_line_style(number)
        )
    ax.set_xticks(range(len(places)), [f"{p}\n(n={results[0].by_place[p]['queries']})" for p in places])
    ax.set_ylabel("recall@1")
    ax.set_xlabel("where the query's passage sits in its document")
    ax.set_title(f"Which document did each passage come from? ({results[0].queries} queries, recall@1)")
    ax.set_ylim(0, 1)
    _legend_below(fig, ax)
    return save(fig, path)


def results_json(results: Sequence[Ranking], extra: dict[str, Any]) -> str:
    return json.dumps({**extra, "results": [r.to_dict() for r in results]}, indent=2) + "\n"
