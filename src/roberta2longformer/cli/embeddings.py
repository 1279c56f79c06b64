"""``evaluate-embeddings``: long-document retrieval with sentence-transformers models, side by side; ``embed``:
document and chunk vectors from one pass (late chunking)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .common import (
    Command,
    Option,
    allow_pickle_option,
    check_inputs,
    exit_codes,
    fast_attention_option,
    force_option,
    json_option,
    note_idle_fast_attention,
    quiet_transformers,
    seed_option,
)


@click.command(
    "evaluate-embeddings", cls=Command, short_help="Long-document retrieval: recall@1/10 and MRR by passage place."
)
@click.argument(
    "models", nargs=-1, required=True, help="sentence-transformers model directories (or builtin:NAME) to compare."
)
@click.option(
    "--data",
    multiple=True,
    help="Documents: text files, JSON Lines files or directories (repeat); with --task needle, the text the facts "
    "are hidden in.",
)
@click.option(
    "--task",
    type=click.Choice(("passkey", "needle")),
    default=None,
    help="Instead of --data's passages: LongEmbed's synthetic retrieval, built offline (seeded) at each of --lengths: "
    "a pass key hidden in filler, or a made-up fact hidden in --data's text.",
)
@click.option(
    "--lengths", default="256,512,1024,2048,4096", show_default=True,
    help="--task: document lengths in tokens (the first model's tokenizer counts).",
)  # fmt: skip
@click.option(
    "--task-documents", type=click.IntRange(min=2), default=100, show_default=True,
    help="--task: candidate documents per length.",
)  # fmt: skip
@click.option(
    "--task-queries", type=click.IntRange(min=1), default=50, show_default=True,
    help="--task: queries per length (one per document, the first ones).",
)  # fmt: skip
@click.option(
    "--queries",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help='JSON Lines of {"query": …, "document": ID}; default: passages from each document\'s start, middle and end.',
)
@click.option("--passage-words", type=click.IntRange(min=1), default=48, help="Words per generated query passage.")
@click.option(
    "--chunks",
    type=click.Choice(("mean", "max", "late-mean", "late-max")),
    multiple=True,
    help="Also read each document in windows of the model's length: their embeddings averaged (mean), or "
    "the best-matching window (max); or read it whole and pool its chunks from that one pass (late chunking): "
    "averaged (late-mean) or the best chunk (late-max); repeat for several.",
)
@click.option(
    "--chunk-tokens",
    type=click.IntRange(min=1),
    default=256,
    help="Late chunking: tokens per chunk (the source's window length compares them with its best window).",
)
@click.option(
    "--window-tokens",
    type=click.IntRange(min=2),
    default=None,
    help="Split queries by whether their passage starts within this many tokens (default: the first model's length).",
)
@click.option("--text-field", default="text", help="The text field of JSON Lines documents.")
@click.option("--id-field", default="id", help="The id field of JSON Lines documents (default id: file:line).")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Texts per forward pass.")
@click.option(
    "--plot", "plot_path", type=click.Path(path_type=Path), default=None, help="Also plot recall@1 by place (PNG)."
)
@json_option("Also write the results as JSON here.")
@seed_option("Seed of the generated query passages.")
@allow_pickle_option(
    "Allow loading pickle weights (.bin) of a model or its modules, which can run code: only if you trust them."
)
@fast_attention_option
def evaluate_embeddings(
    models: tuple[str, ...],
    data: tuple[str, ...],
    task: str | None,
    lengths: str,
    task_documents: int,
    task_queries: int,
    queries: Path | None,
    passage_words: int,
    chunks: tuple[str, ...],
    chunk_tokens: int,
    window_tokens: int | None,
    text_field: str,
    id_field: str,
    batch_size: int,
    plot_path: Path | None,
    json_path: Path | None,
    seed: int,
    allow_pickle: bool,
    fast_attention: bool,
) -> None:
    """Which document did this passage come from? Rank every document for each query, per model.

    Example: roberta2longformer evaluate-embeddings builtin:all-MiniLM-L6-v2 out/minilm-4096 --data novels/ --chunks mean --chunks max
    """
    with exit_codes():
        check_inputs(
            sources=models, data={"--data": data} if data else None, reports={"--json": json_path, "--plot": plot_path},
            files={"--queries": queries},
        )  # fmt: skip
        quiet_transformers()
        note_idle_fast_attention(models)
        options = dict(
            chunks=chunks, window_tokens=window_tokens, fast_attention=fast_attention, batch_size=batch_size,
            allow_pickle=allow_pickle, chunk_tokens=chunk_tokens,
        )  # fmt: skip
        if task is not None:
            _synthetic(models, task, lengths, data, text_field, id_field, seed, task_documents, task_queries,
                       json_path, plot_path, options)  # fmt: skip
        else:
            _passages(models, data, queries, passage_words, text_field, id_field, seed, json_path, plot_path, options)


def _passages(models, data, queries, passage_words, text_field, id_field, seed, json_path, plot_path,
              options) -> None:  # fmt: skip
    """Queries from ``--queries`` or passages of the documents: a table of recall by place, JSON and plot."""
    from ..errors import ConversionError
    from ..io.output import write_text_atomically
    from ..train import retrieval
    from ..train.documents import read_documents
    from ..train.queries import generated_queries, given_queries

    if not data:
        raise ConversionError("No documents given (--data); give text, Markdown, JSON Lines or CSV files, or --task.")
    documents = read_documents(data, text_field=text_field, id_field=id_field)
    ids, texts = list(documents["id"]), list(documents["text"])
    asked = given_queries(queries, ids) if queries else generated_queries(texts, passage_words, seed)
    results = retrieval.evaluate_retrieval(models, ids, texts, asked, **options)
    click.echo(f"{len(texts)} documents, {len(asked)} queries")
    click.echo(retrieval.format_table(results))
    if json_path is not None:
        extra = {"documents": len(texts), "queries": len(asked), "passage_words": passage_words, "seed": seed}
        write_text_atomically(json_path, retrieval.results_json(results, extra))
    if plot_path is not None:
        retrieval.plot(results, plot_path)


def _synthetic(models, task, lengths, data, text_field, id_field, seed, documents, queries, json_path, plot_path,
               options) -> None:  # fmt: skip
    """``--task``: the synthetic task at every length, a table of accuracy@1 per length, JSON and plot."""
    import json

    from ..errors import ConversionError
    from ..io.output import write_text_atomically
    from ..train import retrieval
    from ..train.documents import read_documents
    from ..train.synthetic import parse_lengths

    if queries > documents:
        raise ConversionError(f"--task-queries {queries} is more than --task-documents {documents}; ask for fewer.")
    haystack = list(read_documents(data, text_field=text_field, id_field=id_field)["text"]) if data else []
    if task == "needle" and not haystack:
        raise ConversionError("--task needle hides its facts in real text: give documents with --data.")
    results = retrieval.evaluate_synthetic(
        models, task, parse_lengths(lengths), haystack=haystack, seed=seed, documents=documents, queries=queries,
        **options,
    )  # fmt: skip
    click.echo(f"{task}: {documents} documents and {queries} queries per length")
    click.echo(retrieval.format_synthetic_table(results))
    if json_path is not None:
        rows = [{"length": length, **r.to_dict()} for length, r in results]
        extra = {"task": task, "documents": documents, "queries": queries, "seed": seed}
        write_text_atomically(json_path, json.dumps({**extra, "results": rows}, indent=2) + "\n")
    if plot_path is not None:
        retrieval.plot_synthetic(results, task, plot_path)


@click.command("embed", cls=Command, short_help="Document and chunk vectors from one pass (late chunking).")
@click.argument("model", help="A sentence-transformers model directory (or builtin:NAME), long or not.")
@click.option(
    "--data", multiple=True, required=True, help="Documents: text files, JSON Lines files or directories (repeat)."
)
@click.option(
    "--output", "-o", type=click.Path(path_type=Path), required=True,
    help="Directory to create for the vectors (.npy) and the documents' and chunks' rows.",
)  # fmt: skip
@click.option(
    "--chunking",
    type=click.Choice(("tokens", "sentences", "paragraphs")),
    default="tokens",
    help="Chunk boundaries: every --chunk-tokens tokens, or the text's sentences or paragraphs (a longer one is cut).",
)
@click.option("--chunk-tokens", type=click.IntRange(min=1), default=256, help="Tokens per chunk (at most).")
@click.option(
    "--overlap",
    type=click.IntRange(min=0),
    default=None,
    cls=Option,
    default_text="a quarter of the model's length",
    help="A document longer than the model is read in windows overlapping by this many tokens; each token keeps "
    "the state of the window it sits most central in.",
)
@click.option("--format", "file_format", type=click.Choice(("jsonl", "parquet")), default="jsonl",
              help="How the documents' and chunks' rows are written (the vectors: .npy).")  # fmt: skip
@click.option("--text-field", default="text", help="The text field of JSON Lines documents.")
@click.option("--id-field", default="id", help="The id field of JSON Lines documents (default id: file:line).")
@force_option
@allow_pickle_option(
    "Allow loading pickle weights (.bin) of a model or its modules, which can run code: only if you trust them."
)
@fast_attention_option
def embed(
    model: str,
    data: tuple[str, ...],
    output: Path,
    chunking: str,
    chunk_tokens: int,
    overlap: int | None,
    file_format: str,
    text_field: str,
    id_field: str,
    force: bool,
    allow_pickle: bool,
    fast_attention: bool,
) -> None:
    """Embed each document once and pool its chunks from that pass: a document vector and chunk vectors
    that carry the whole document's context (late chunking).

    Example: roberta2longformer embed out/minilm-4096 --data manuals/ -o out/vectors --chunking paragraphs
    """
    with exit_codes():
        check_inputs(sources=[model], outputs=[output], force=force, data={"--data": data})
        from ..io.output import atomic_output_dir
        from ..train.documents import read_documents
        from ..train.late_chunking import LateChunker, write_embeddings
        from ..train.retrieval import Embedder

        quiet_transformers()
        note_idle_fast_attention([model])
        documents = read_documents(data, text_field=text_field, id_field=id_field)
        embedder = Embedder(model, fast_attention=fast_attention, allow_pickle=allow_pickle)
        chunker = LateChunker(embedder.model, chunking=chunking, chunk_size=chunk_tokens, overlap=overlap)
        settings = {
            "model": model, "reads": chunker.length, "chunking": chunking, "chunk_tokens": chunk_tokens,
            "overlap": chunker.overlap, "normalised": chunker.normalises, "attention": embedder.attention,
        }  # fmt: skip
        with atomic_output_dir(output, force=force) as staging:
            summary = write_embeddings(
                chunker.embed_all(list(documents["id"]), list(documents["text"]), progress=sys.stderr.isatty()),
                staging, file_format=file_format, settings=settings,
            )  # fmt: skip
        click.echo(
            f"Embedded {summary['documents']} documents ({summary['chunks']} chunks, {summary['dimensions']} "
            f"dimensions, read {chunker.length} tokens at a time) into {output}"
        )
