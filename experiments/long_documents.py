"""Does reading the whole document pay? Chapter → novel classification on Jane Austen, side by side.

The Longformer paper (Beltagy et al., 2020, Table 7) fine-tuned RoBERTa-base at 512 tokens and the
Longformer made from it at 4096: Hyperpartisan 87.4 → 94.8 F1, IMDB 95.3 → 95.7 accuracy. Here, on
2 CPU cores: the 269 chapters of Austen's six novels, each cut to its first 2048 tokens of the
built-in model's tokenizer (the document), labelled by their novel and split per novel into
train / eval / test (seeded). The evidence (names, places, style) is spread over the whole
document, so each setting reads a different share of it:

- the built-in 2-layer RoBERTa (128 tokens) reading each document's first 128 tokens (``--truncate``);
- the same model over every 128-token window, predictions averaged (``--chunks mean``);
- that model converted to a 2048-token Longformer (window 128, tiled positions), reading it whole;
- the same after continued masked-LM pretraining at 2048 tokens (``pretrain``, on the training documents).

Each fine-tuning is ``roberta2longformer.train.finetuning.finetune`` with the same settings, over
several seeds (the split, the head and the data order change with the seed); the table reports the
test accuracy and macro-F1 (mean ± standard deviation over seeds).

Run: .venv/bin/python experiments/long_documents.py   → docs/long_documents.{md,json,png}
(the committed docs/long_documents.* come from the command written in docs/long_documents.md)
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import transformers  # noqa: E402

from roberta2longformer import convert, save_conversion  # noqa: E402
from roberta2longformer.runtime import environment  # noqa: E402
from roberta2longformer.train.finetuning import FinetuneOptions, finetune  # noqa: E402
from roberta2longformer.train.pretraining import PretrainOptions, pretrain  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from austen import fetch_austen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SOURCE = "builtin:austen-roberta"
MAX_LENGTH, WINDOW = 2048, 128
PAPER = "Longformer paper, Table 7: RoBERTa-base (512) → Longformer-base (4096): Hyperpartisan F1 87.4 → 94.8, IMDB 95.3 → 95.7"


def chapters(data: Path) -> list[dict]:
    """Each chapter's text up to its first ``MAX_LENGTH`` tokens (special tokens included), and its novel."""
    from roberta2longformer.core.locations import resolve_source

    tokenizer = transformers.AutoTokenizer.from_pretrained(resolve_source(SOURCE))
    rows = []
    for path in sorted(p for part in ("train", "heldout") for p in (data / part).glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        ends = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        cut = (
            ends[MAX_LENGTH - tokenizer.num_special_tokens_to_add() - 1][1] if len(ends) > MAX_LENGTH - 2 else len(text)
        )
        rows.append({"text": text[:cut], "label": path.stem.rsplit("-", 1)[0]})
    return rows


def split(rows: list[dict], seed: int, work: Path) -> dict[str, Path]:
    """Per novel: 60% train, 20% eval, 20% test, shuffled with ``seed``; written as JSON Lines."""
    parts: dict[str, list[dict]] = {"train": [], "eval": [], "test": []}
    generator = random.Random(seed)
    for novel in sorted({row["label"] for row in rows}):
        mine = [row for row in rows if row["label"] == novel]
        generator.shuffle(mine)
        a, b = int(0.6 * len(mine)), int(0.8 * len(mine))
        parts["train"] += mine[:a]
        parts["eval"] += mine[a:b]
        parts["test"] += mine[b:]
    files = {}
    for name, part in parts.items():
        files[name] = work / f"{name}-{seed}.jsonl"
        files[name].write_text("".join(json.dumps(row) + "\n" for row in part), encoding="utf-8")
    return files


def long_models(work: Path, pretrain_steps: int, train_texts: Path) -> dict[str, str]:
    """The converted Longformer, and the same after continued pretraining on the training chapters."""
    converted = save_conversion(convert(SOURCE, max_length=MAX_LENGTH, attention_window=WINDOW), None, work / "long")
    models = {"long, converted": str(converted)}
    if pretrain_steps:
        model = transformers.AutoModelForMaskedLM.from_pretrained(converted)
        tokenizer = transformers.AutoTokenizer.from_pretrained(converted)
        options = PretrainOptions(
            max_steps=pretrain_steps, batch_size=8, learning_rate=3e-4, save_steps=10**6, eval_steps=10**6,
            held_out=0.0, precision="fp32", logging_steps=50,
        )  # fmt: skip
        summary = pretrain(model, tokenizer, [str(train_texts)], work / "pretrained", options)
        models[f"long, + {pretrain_steps} steps of pretraining"] = summary["final"]
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=float, default=6)
    parser.add_argument("--learning-rate", type=float, default=5e-4)
    parser.add_argument("--pretrain-steps", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--report-only", action="store_true", help="rewrite long_documents.md/png from the JSON")
    args = parser.parse_args()
    if args.report_only:
        write_report(json.loads((args.out / "long_documents.json").read_text(encoding="utf-8")), args.out)
        return
    transformers.logging.set_verbosity_error()
    data = fetch_austen(ROOT / ".cache" / "austen")
    rows = chapters(data)
    work = Path(tempfile.mkdtemp(prefix="long-documents-"))
    started = time.time()
    try:
        texts = work / "pretrain-texts"
        texts.mkdir()
        first = split(rows, 0, work)  # continued pretraining reads the first seed's training chapters only
        for i, line in enumerate(first["train"].read_text().splitlines()):
            (texts / f"{i}.txt").write_text(json.loads(line)["text"], encoding="utf-8")
        settings = {
            "short (128), first 128 tokens": (SOURCE, {"truncate": 128}),
            "short (128), windows averaged": (SOURCE, {"chunks": "mean"}),
            **{name: (path, {}) for name, path in long_models(work, args.pretrain_steps, texts).items()},
        }
        results: dict[str, list[dict]] = {name: [] for name in settings}
        for seed in range(args.seeds):
            files = split(rows, seed, work)
            for name, (model, extra) in settings.items():
                options = FinetuneOptions(
                    epochs=args.epochs, batch_size=8, learning_rate=args.learning_rate, precision="fp32", seed=seed,
                    early_stopping_patience=None, **extra,
                )  # fmt: skip
                out = work / f"run-{seed}-{len(results[name])}-{abs(hash(name))}"
                summary = finetune(model, str(files["train"]), str(files["eval"]), str(files["test"]), out, options)
                results[name].append({"seed": seed, **summary["test"], "reading": summary["reading"]})
                print(f"seed {seed} · {name}: test accuracy {summary['test']['accuracy']:.3f}", flush=True)
                shutil.rmtree(out, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "task": f"chapter (its first {MAX_LENGTH} tokens) → novel (6 classes), Austen",
        "documents": len(rows),
        "seeds": args.seeds,
        "epochs": args.epochs,
        "learning_rate": args.learning_rate,
        "pretrain_steps": args.pretrain_steps,
        "minutes": round((time.time() - started) / 60, 1),
        "machine": environment(),
        "command": " ".join(["experiments/long_documents.py", *sys.argv[1:]]),
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "long_documents.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_report(report, args.out)


def _mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def findings(results: dict[str, list[dict]]) -> list[str]:
    """What our numbers say about the paper's findings, computed from them."""
    mean = {name: statistics.mean(r["accuracy"] for r in runs) for name, runs in results.items()}
    truncated, windows = mean["short (128), first 128 tokens"], mean["short (128), windows averaged"]
    converted = mean["long, converted"]
    pretrained = next((v for k, v in mean.items() if "pretraining" in k), None)
    verdict = lambda holds: "**reproduced**" if holds else "**not reproduced**"  # noqa: E731
    lines = [
        "What our numbers say about the paper's findings:",
        "",
        f"- The long model beats its short source reading the first tokens: {verdict(converted > truncated)} "
        f"(accuracy {converted:.3f} vs {truncated:.3f}; the paper: Hyperpartisan F1 94.8 vs 87.4).",
        f"- It beats the short model over windows with their predictions averaged: {verdict(converted > windows)} "
        f"({converted:.3f} vs {windows:.3f}). Every setting uses the same learning rate and epochs, so the windowed "
        "baseline makes about 16 times as many updates (one per window), and a novel's names and style are in "
        "every window: this task does not need a window to see another. (Versions of this report before "
        "the evaluation kept the data's order averaged windows of different documents and showed 0.327 here.)",
    ]
    if pretrained is not None:
        lines.append(
            f"- Continued masked-LM pretraining before fine-tuning helps: {verdict(pretrained > converted)} "
            f"({pretrained:.3f} vs {converted:.3f} without it, after a short pretraining). The paper found the "
            "pretraining mattered little for fine-tuning too (WikiHop lost 0.6 points without it)."
        )
    return lines


def write_report(report: dict, out: Path) -> None:
    lines = [
        "# Reading the whole document: chapter → novel on Jane Austen",
        "",
        f"Produced by `{report['command']}` in {report['minutes']} min on {report['machine'].get('cpu', 'a CPU')} "
        f"({report['machine'].get('torch_threads', '?')} torch threads): {report['documents']} chapters of six novels, "
        f"each cut to its first {MAX_LENGTH} tokens, "
        f"split per novel 60/20/20 (train/eval/test) with each seed; {report['epochs']:g} epochs at learning rate "
        f"{report['learning_rate']:g}, batch 8, fp32; test scores, mean ± sd over {report['seeds']} seeds.",
        "",
        "| setting | reads | test accuracy | test macro-F1 |",
        "|---|---|---|---|",
    ]
    for name, runs in report["results"].items():
        accuracy, f1 = _mean_sd([r["accuracy"] for r in runs]), _mean_sd([r["f1_macro"] for r in runs])
        lines.append(
            f"| {name} | {runs[0]['reading']} | {accuracy[0]:.3f} ± {accuracy[1]:.3f} | {f1[0]:.3f} ± {f1[1]:.3f} |"
        )
    lines += [
        "",
        f"For comparison, the {PAPER}.",
        "",
        *findings(report["results"]),
        "",
        "![Test accuracy per setting](long_documents.png)",
        "",
    ]
    (out / "long_documents.md").write_text("\n".join(lines), encoding="utf-8")
    names = list(report["results"])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    for i, name in enumerate(names):
        values = [r["accuracy"] for r in report["results"][name]]
        ax.scatter([i] * len(values), values, color="tab:blue", alpha=0.6)
        ax.bar(i, statistics.mean(values), color="tab:blue", alpha=0.3)
    ax.axhline(1 / 6, color="grey", linestyle="--", linewidth=1, label="chance (6 novels)")
    ax.set_xticks(range(len(names)), [n.replace(", ", ",\n", 1) for n in names], fontsize=8)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.04)  # a run at 1.0 stays a whole dot
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "long_documents.png", dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
