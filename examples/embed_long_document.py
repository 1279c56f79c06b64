"""Embed one long document with a converted sentence-transformers model, beside its 256-token source.

    python examples/embed_long_document.py out/minilm-4096 [--text FILE] [--source builtin:all-MiniLM-L6-v2]

The converted directory loads with ``SentenceTransformer`` (the source's pooling and normalisation come with it);
one call, ``fast.enable(model)``, has its Longformer layers compute with roberta2longformer's fast attention (the
same embeddings, in a fraction of the time on long inputs). The default document is the GNU GPL v3 text that
every Debian system ships (~6.8k tokens with the MiniLM vocabulary). The converted model has not been trained
beyond its source's positions: this shows that the whole document is read, and how far its untrained embedding
drifts from the source's, not that it is a good long-document embedding yet (see docs/long-embeddings.md).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sentence_transformers import SentenceTransformer

from roberta2longformer import fast
from roberta2longformer.core.locations import resolve_source

DEFAULT_TEXT = Path("/usr/share/common-licenses/GPL-3")


def embedded(model: SentenceTransformer, text: str) -> tuple:
    """(the normalised embedding, the tokens read, the seconds it took)."""
    started = time.perf_counter()
    vector = model.encode([text], normalize_embeddings=True, convert_to_numpy=True)[0]
    read = min(len(model.tokenizer(text)["input_ids"]), model.max_seq_length)
    return vector, read, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("converted", help="directory of the converted sentence-transformers model")
    parser.add_argument("--source", default="builtin:all-MiniLM-L6-v2", help="the model it was converted from")
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="a long plain-text document")
    args = parser.parse_args()
    if not args.text.is_file():
        parser.error(f"{args.text} does not exist; pass a plain-text document with --text.")
    text = args.text.read_text(encoding="utf-8")

    source = SentenceTransformer(resolve_source(args.source), device="cpu")
    converted = SentenceTransformer(args.converted, device="cpu")
    fast.enable(converted)  # the Longformer layers inside, on the fast backend: the one call
    source_vector, source_read, source_seconds = embedded(source, text)
    long_vector, long_read, long_seconds = embedded(converted, text)

    print(f"document: {args.text} ({len(text):,} characters, {len(converted.tokenizer(text)['input_ids']):,} tokens)")
    print(f"{'model':<28} {'tokens read':>11} {'seconds':>8}  normalised embedding (first 4 of {len(long_vector)})")
    for name, vector, read, seconds in (
        ("source", source_vector, source_read, source_seconds),
        ("converted, whole document", long_vector, long_read, long_seconds),
    ):
        print(f"{name:<28} {read:>11} {seconds:>8.2f}  {' '.join(f'{v:+.4f}' for v in vector[:4])} …")
    print(
        f"cosine between the two: {float(source_vector @ long_vector):.4f}; norms {float((long_vector**2).sum()) ** 0.5:.3f}"
    )


if __name__ == "__main__":
    main()
