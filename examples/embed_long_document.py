"""Embed one long document with a converted model and compare with its 512-token source.

    python examples/embed_long_document.py out/minilm-longformer-4096 [--text FILE] [--source builtin:all-MiniLM-L6-v2]

The default document is the GNU GPL v3 text that every Debian system ships (~6.8k tokens with the MiniLM vocabulary).
Embeddings are mean-pooled last hidden states, as all-MiniLM-L6-v2 was trained to use them.
The converted model has not been trained beyond its source's 512 positions: this shows that the
pipeline runs end to end on a real model and how far the untrained long embedding drifts, not
that it is a good long-document embedding yet (that needs continued pretraining/fine-tuning).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from roberta2longformer.core.loading import load_model, load_tokenizer

DEFAULT_TEXT = Path("/usr/share/common-licenses/GPL-3")


def mean_pooled(model, tokenizer, text: str, max_length: int) -> tuple[torch.Tensor, int, float]:
    encoded = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
    started = time.perf_counter()
    with torch.inference_mode():
        hidden = model(**encoded).last_hidden_state
    seconds = time.perf_counter() - started
    mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    embedding = (hidden * mask).sum(1) / mask.sum(1)
    return embedding[0], int(encoded["input_ids"].shape[1]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("converted", help="directory of the converted long model")
    parser.add_argument("--source", default="builtin:all-MiniLM-L6-v2", help="the model it was converted from")
    parser.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="a long plain-text document")
    args = parser.parse_args()
    if not args.text.is_file():
        parser.error(f"{args.text} does not exist; pass a plain-text document with --text.")
    text = args.text.read_text(encoding="utf-8")

    source, source_tok = load_model(args.source), load_tokenizer(args.source)
    long_model, long_tok = load_model(args.converted), load_tokenizer(args.converted)
    short_len = source_tok.model_max_length if source_tok.model_max_length < 100_000 else 512
    short_len = min(short_len, source.config.max_position_embeddings)
    total_tokens = len(long_tok(text, verbose=False)["input_ids"])

    src_emb, src_tokens, src_s = mean_pooled(source, source_tok, text, short_len)
    same_emb, _, same_s = mean_pooled(long_model, long_tok, text, short_len)
    long_emb, long_tokens, long_s = mean_pooled(long_model, long_tok, text, long_tok.model_max_length)

    cos = lambda a, b: F.cosine_similarity(a, b, dim=0).item()  # noqa: E731
    print(f"document: {args.text} ({len(text):,} characters, {total_tokens:,} tokens)")
    print(f"{'model':<34} {'tokens read':>11} {'seconds':>8}  cosine to source embedding")
    print(f"{'source ' + type(source).__name__:<34} {src_tokens:>11} {src_s:>8.2f}  1.0000")
    print(
        f"{'converted, same ' + str(short_len) + ' tokens':<34} {src_tokens:>11} {same_s:>8.2f}  {cos(same_emb, src_emb):.4f}"
    )
    print(f"{'converted, whole document':<34} {long_tokens:>11} {long_s:>8.2f}  {cos(long_emb, src_emb):.4f}")
    print(f"embedding of the whole document: dimension {long_emb.numel()}, norm {long_emb.norm():.3f}")


if __name__ == "__main__":
    main()
