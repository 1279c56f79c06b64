"""Long-document embeddings without training: which conversion finds what the short model cannot?

The built-in all-MiniLM-L6-v2 (a sentence-transformers BERT used at 256 of its 512 positions) reads
Austen chapters (the documents; 269 of them, most longer than 4096 word pieces) and must find the
chapter that a 48-word passage came from, for passages from each chapter's start, middle and end
(``roberta2longformer evaluate-embeddings``, seeded). Compared side by side, as a user would:

- the source reading its first 256 tokens (what sentence-transformers does by default);
- the source over 256-token windows, their embeddings averaged (``--chunks mean``);
- the source converted to a 4096-token Longformer (window 512, so every token sees the 256
  neighbours the source was trained with), with each position init: ``tile`` (all 512 rows
  repeated), ``tile-trained`` (only the 256 rows it was used at, repeated) and ``interpolate``.

No training here: the conversions alone (the issue's item 4, training the new position rows, is
not built yet). Run: .venv/bin/python experiments/long_embeddings.py  → docs/embeddings.{md,json,png}
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import transformers

from roberta2longformer.core.streaming import convert_checkpoint
from roberta2longformer.runtime import environment
from roberta2longformer.train import retrieval

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from austen import fetch_austen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "builtin:all-MiniLM-L6-v2"
INITS = ("tile", "tile-trained", "interpolate")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-length", type=int, default=4096)
    parser.add_argument("--attention-window", type=int, default=512)
    parser.add_argument("--passage-words", type=int, default=48)
    parser.add_argument("--max-documents", type=int, default=None)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    data = fetch_austen(ROOT / ".cache" / "austen")
    ids, texts = retrieval.read_documents([str(data / "train"), str(data / "heldout")])
    ids, texts = ids[: args.max_documents], texts[: args.max_documents]
    queries = retrieval.generated_queries(texts, args.passage_words, seed=0)
    work = Path(tempfile.mkdtemp(prefix="long-embeddings-"))
    started = time.time()
    try:
        models = {"source": SOURCE}
        for init in INITS:
            out = work / init
            convert_checkpoint(
                SOURCE, out, max_length=args.max_length, attention_window=args.attention_window,
                position_init=init, smoke=False, progress=False,
            )  # fmt: skip
            models[f"long ({init})"] = str(out)
        source = retrieval.evaluate_retrieval([SOURCE], ids, texts, queries, chunks=True, window_tokens=256)
        long = retrieval.evaluate_retrieval(
            [models[f"long ({init})"] for init in INITS], ids, texts, queries, window_tokens=256
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = {models[key]: key for key in models}
    rows = []
    for result in [*source, *long]:
        label = names[result.model]
        label = f"source, first {result.reads} tokens" if result.mode == "whole" and label == "source" else (
            f"source, {result.reads}-token windows averaged" if label == "source" else
            f"→ Longformer {result.reads}, position_init {label[6:-1]}"
        )  # fmt: skip
        rows.append({"method": label, **result.to_dict()})
    report = {
        "documents": len(texts),
        "queries": len(queries),
        "passage_words": args.passage_words,
        "max_length": args.max_length,
        "attention_window": args.attention_window,
        "minutes": round((time.time() - started) / 60, 1),
        "machine": environment(),
        "command": " ".join(["experiments/long_embeddings.py", *sys.argv[1:]]),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "embeddings.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_report(report, args.out, [*source, *long], [r["method"] for r in rows])


def write_report(report: dict, out: Path, results, labels) -> None:
    lines = [
        "# Long-document embeddings: all-MiniLM-L6-v2 on Austen chapters",
        "",
        f"Produced by `{report['command']}` in {report['minutes']} min on {report['machine'].get('cpu', 'a CPU')}: "
        f"{report['documents']} chapters as documents, {report['queries']} queries of {report['passage_words']} words "
        "(one passage from each chapter's start, middle and end, seeded), cosine retrieval over all chapters with "
        "the model's own mean pooling and normalisation. Long models: Longformer of "
        f"{report['max_length']} tokens, window {report['attention_window']}, no training.",
        "",
        "| method | recall@1 | recall@10 | MRR | recall@1, start | middle | end |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        o, p = row["overall"], row["by_place"]
        lines.append(
            f"| {row['method']} | {o['recall@1']:.3f} | {o['recall@10']:.3f} | {o['mrr']:.3f} | "
            f"{p['start']['recall@1']:.3f} | {p['middle']['recall@1']:.3f} | {p['end']['recall@1']:.3f} |"
        )
    lines += ["", "![recall@1 by passage place](embeddings.png)", ""]
    (out / "embeddings.md").write_text("\n".join(lines), encoding="utf-8")
    for result, label in zip(results, labels):
        result.model, result.mode = label, ""
    retrieval.plot(results, out / "embeddings.png")


if __name__ == "__main__":
    main()
