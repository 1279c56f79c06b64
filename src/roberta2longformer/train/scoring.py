"""Scores and predictions of the supervised tasks: classification metrics (scikit-learn), ROUGE (Google's
rouge-score, the package the Hub's ROUGE metric wraps), and the rows of ``predictions.jsonl``."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score

from ..io.output import write_text_atomically
from .pooling import mean_per_group


def classification_metrics(logits: np.ndarray, labels: np.ndarray, multi: bool) -> dict[str, float]:
    """accuracy, macro- and micro-F1 (scikit-learn); multi-label: a label is predicted at probability 0.5,
    and accuracy is the exact-match ratio."""
    predicted, truth = predicted_labels(logits, multi), labels.astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
    }


def probabilities(logits: np.ndarray, multi: bool) -> np.ndarray:
    """Per label: the sigmoid (multi-label) or the softmax of the logits."""
    if multi:
        return 1 / (1 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def predicted_labels(logits: np.ndarray, multi: bool) -> np.ndarray:
    """The label index (single-label), or 0/1 per label at probability 0.5 (multi-label)."""
    return (probabilities(logits, True) >= 0.5).astype(int) if multi else logits.argmax(-1)


def per_document(logits: np.ndarray, labels: np.ndarray, docs: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Window predictions averaged per document (``chunks="mean"``); unchanged without windows."""
    if docs is None:
        return logits, labels
    mean, starts = mean_per_group(logits, docs)
    return mean, labels[starts]


def classification_scorer(multi: bool, docs: list[int] | None):
    """The Trainer's ``compute_metrics`` for classification (window predictions averaged per document)."""

    def compute(prediction) -> dict[str, float]:
        logits, truth = per_document(np.asarray(prediction.predictions), np.asarray(prediction.label_ids), docs)
        return classification_metrics(logits, truth, multi)

    return compute


def label_rows(
    logits: np.ndarray, truth: np.ndarray | None, names: list[str], multi: bool, ids: Sequence[str]
) -> list[dict]:
    """One row per document: its id, the predicted label (or labels), every label's probability, and the gold
    label(s) when known."""
    chances, chosen = probabilities(logits, multi), predicted_labels(logits, multi)
    rows = []
    for index, (row_chances, row_chosen) in enumerate(zip(chances, chosen)):
        row: dict[str, Any] = {"id": ids[index] if index < len(ids) else str(index + 1)}
        if multi:
            row["labels"] = [names[i] for i in np.flatnonzero(row_chosen)]
        else:
            row["label"] = names[int(row_chosen)]
        if truth is not None:
            gold = truth[index]
            row["gold"] = [names[i] for i in np.flatnonzero(gold)] if multi else names[int(gold)]
        row["scores"] = {name: round(float(p), 6) for name, p in zip(names, row_chances)}
        rows.append(row)
    return rows


def rouge_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measures (Google's rouge-score package, the one the Hub's ROUGE metric wraps)."""
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {name: float(np.mean([s[name].fmeasure for s in scores])) for name in ("rouge1", "rouge2", "rougeL")}


def decoded(tokenizer, ids: np.ndarray) -> list[str]:
    """Token ids (the Trainer's -100 padding included) as text."""
    return tokenizer.batch_decode(np.where(ids < 0, tokenizer.pad_token_id, ids), skip_special_tokens=True)


def rouge_scorer_for(tokenizer):
    """The Trainer's ``compute_metrics`` for summarization."""

    def compute(prediction) -> dict[str, float]:
        return rouge_scores(decoded(tokenizer, prediction.predictions), decoded(tokenizer, prediction.label_ids))

    return compute


def write_predictions(output_dir: Path, rows: list[dict], scores: dict | None) -> None:
    """``predictions.jsonl`` (one row per test document), and ``test_results.json`` when it was scored."""
    write_text_atomically(
        output_dir / "predictions.jsonl", "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    )
    if scores is not None:
        write_text_atomically(output_dir / "test_results.json", json.dumps(scores, indent=2) + "\n")
