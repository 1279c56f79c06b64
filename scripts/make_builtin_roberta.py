"""Reproduce the built-in English RoBERTa (builtin:austen-roberta) from scratch.

1. Fetch Jane Austen's novels (Debian's r-cran-janeaustenr) as chapter files; Persuasion is held out.
2. Train a byte-level BPE tokenizer (vocabulary 1000) on the five training novels.
3. Pretrain a 2-layer RoBERTa (hidden 128) at 128 tokens with `roberta2longformer pretrain
   --from-config` — the recipe of ../shared/NOTES-pretraining.md (init 0.08, sinusoidal position
   start, no dropout, lr 1e-3, linear decay), which leaves the unigram plateau.
4. Copy the final model, tokenizer, metrics.csv and the training log into the package.

Run: .venv/bin/python scripts/make_builtin_roberta.py [--steps 8000]   (about 40 min on 2 CPU cores)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import transformers
from tokenizers import ByteLevelBPETokenizer

from austen import fetch_austen  # scripts/austen.py, beside this script
from roberta2longformer.core.tokenizer import roberta_tokenizer

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "roberta2longformer" / "models" / "austen-roberta"
WORK = ROOT / ".cache" / "builtin-roberta"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=8000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    corpus = fetch_austen(ROOT / ".cache" / "austen")
    shutil.rmtree(WORK, ignore_errors=True)
    start = WORK / "init"
    start.mkdir(parents=True)

    texts = [p.read_text(encoding="utf-8") for p in sorted((corpus / "train").glob("*.txt"))]
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        (line + "\n" for text in texts for line in text.splitlines()),
        vocab_size=1000,
        min_frequency=2,
        special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"],
    )
    tokenizer = roberta_tokenizer(bpe._tokenizer, 128)
    tokenizer.save_pretrained(start)
    transformers.RobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        max_position_embeddings=130,
        type_vocab_size=1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        initializer_range=0.08,
        layer_norm_eps=1e-5,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        architectures=["RobertaForMaskedLM"],
    ).save_pretrained(start)

    command = [
        str(ROOT / ".venv" / "bin" / "roberta2longformer"),
        "pretrain",
        "--from-config",
        str(start),
        "--sinusoidal-positions",
        "--data",
        str(corpus / "train"),
        "-o",
        str(WORK / "run"),
        "--max-steps",
        str(args.steps),
        "--batch-size",
        "32",
        "--max-length",
        "128",
        "--learning-rate",
        "1e-3",
        "--schedule",
        "linear",
        "--warmup-ratio",
        "0.05",
        "--held-out",
        "0.02",
        "--eval-steps",
        "1000",
        "--save-steps",
        "500",
        "--logging-steps",
        "50",
        "--precision",
        "fp32",
        "--seed",
        str(args.seed),
    ]
    log = WORK / "training.log"
    with log.open("w") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True)
    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(WORK / "run" / "final", TARGET, ignore=shutil.ignore_patterns("training_args.bin"))
    shutil.copy(WORK / "run" / "metrics.csv", TARGET / "metrics.csv")
    shutil.copy(log, TARGET / "training.log")
    print(f"Wrote {TARGET}")


if __name__ == "__main__":
    sys.exit(main())
