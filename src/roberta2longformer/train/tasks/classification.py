"""Document classification, single-label and multi-label: labels read from the data into the config, the
model's own length as the default (documents cut to it are counted and said), and the two baselines a long
model must beat: a short model reading the first N tokens (``truncate``) or its windows with their
predictions averaged (``chunks="mean"``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...errors import ConversionError
from ..documents import require_fields
from ..options import FinetuneOptions
from .base import Data, Job, Task, register, summarizes


@dataclass
class Labels:
    """The label set read from the training data, in a stable (sorted) order."""

    names: list[str]
    multi: bool

    @classmethod
    def from_data(cls, values: Sequence[Any]) -> Labels:
        multi = all(isinstance(v, (list, tuple)) for v in values)
        if not multi and any(isinstance(v, (list, tuple)) for v in values):
            raise ConversionError("The label field mixes single labels and lists; give one label, or a list, per row.")
        found = {str(name) for v in values for name in (v if multi else [v])}
        if len(found) < (1 if multi else 2):
            raise ConversionError(f"The training data has {len(found)} label(s); classification needs at least two.")
        return cls(sorted(found, key=_natural), multi)

    def encode(self, value: Any, what: str) -> Any:
        index = {name: i for i, name in enumerate(self.names)}
        names = [str(v) for v in value] if self.multi else [str(value)]
        unknown = [name for name in names if name not in index]
        if unknown:
            raise ConversionError(
                f"{what} has the label {unknown[0]!r}, which the training data does not have "
                f"({', '.join(self.names[:8])}{' …' if len(self.names) > 8 else ''}); every label must appear in training."
            )
        if self.multi:
            hot = [0.0] * len(self.names)
            for name in names:
                hot[index[name]] = 1.0
            return hot
        return index[names[0]]


def _natural(name: str) -> tuple:
    """Numbers in numeric order (``2`` before ``10``), other names alphabetically."""
    try:
        return (0, float(name), "")
    except ValueError:
        return (1, 0.0, name)


def _labels_are_lists(train: Any, options: FinetuneOptions) -> bool:
    values = train[options.label_field] if options.label_field in train.column_names else []
    return bool(values) and isinstance(values[0], (list, tuple))


@register
class Classification(Task):
    name = "classification"
    options = ("label_field", "truncate", "chunks", "early_stopping_patience")
    reported_metrics = ("accuracy", "f1_macro", "f1_micro", "loss")
    best_metric = "f1_macro"
    pipeline_tag = "text-classification"
    auto_class = "AutoModelForSequenceClassification"
    multi = False

    def matches(self, config: Any, train: Any, options: FinetuneOptions) -> bool:
        return not summarizes(config, train, options) and _labels_are_lists(train, options) == self.multi

    def refusal(self, config: Any) -> str | None:
        if getattr(config, "is_encoder_decoder", False):
            return (
                "Classification fine-tunes an encoder model; this is an encoder-decoder, which this command fine-tunes "
                "for summarization (--task summarization with a --summary-field)."
            )
        return None

    def prepare(self, location: str, config: Any, data: Data, options: FinetuneOptions) -> Job:
        from . import supervised  # transformers and datasets: loaded when a run starts, not with --help

        fields = {options.label_field: "--label-field"}
        require_fields(data.train, fields, "--train", data.train_source)
        require_fields(data.eval, fields, "--eval", data.eval_source)
        labels = Labels.from_data(list(data.train[options.label_field]))
        if labels.multi != self.multi:
            raise ConversionError(
                f"--task {self.name} but the labels are {'lists' if labels.multi else 'single values'}; "
                f"use --task {'multi-label' if labels.multi else 'classification'} (or auto)."
            )
        model, head_note = supervised.load_classifier(location, labels, config, data.allow_pickle)
        tokenizer = supervised.trained_tokenizer(location)
        length = supervised.reading_length(model, options)
        splits = {"train": data.train, "eval": data.eval, "test": data.test}
        encoded, owners, cut = supervised.encode_windows(tokenizer, splits, labels, length, options)
        notes = [*([head_note] if head_note else []), *supervised.CutNotes(cut, length, options).lines()]
        answered = data.test is not None and options.label_field in data.test.column_names
        ids = list(data.test["id"]) if data.test is not None else []
        state = {"labels": labels, "owners": owners, "answered": answered, "ids": ids}
        return Job(
            model, model, tokenizer, encoded["train"], encoded["eval"], encoded.get("test"), length, notes, state
        )

    def trainer(self, job: Job, output_dir: Path, options: FinetuneOptions) -> Any:
        from .. import scoring  # numpy and scikit-learn: loaded when a run starts, not with --help
        from . import supervised

        multiple = supervised.input_multiple(job.model)
        collator = supervised.GlobalFirstToken(supervised.padding_collator(job.tokenizer, multiple), job.model)
        metrics = scoring.classification_scorer(self.multi, job.state["owners"].get("eval"))
        return supervised.supervised_trainer(self, job, output_dir, options, collator, metrics)

    def predict(self, trainer: Any, job: Job, output_dir: Path) -> dict[str, float] | None:
        """``predictions.jsonl``: per test document its id, the predicted label(s), each label's probability, and
        the gold label(s) when the test data has them; ``test_results.json`` when it does."""
        import numpy as np  # loaded when a run starts, not with --help

        from .. import scoring

        trainer.compute_metrics = None  # it knows the eval set's documents; the test set is scored below
        output = trainer.predict(job.test)
        owners = job.state["owners"].get("test")
        logits, truth = scoring.per_document(np.asarray(output.predictions), np.asarray(output.label_ids), owners)
        answered = job.state["answered"]
        names = job.state["labels"].names
        rows = scoring.label_rows(logits, truth if answered else None, names, self.multi, job.state["ids"])
        scores = scoring.classification_metrics(logits, truth, self.multi) if answered else None
        if trainer.is_world_process_zero():
            scoring.write_predictions(output_dir, rows, scores)
        return scores

    def summary(self, job: Job, options: FinetuneOptions) -> dict[str, Any]:
        if options.chunks:
            return {"reading": f"every window of {job.length} tokens, predictions averaged per document"}
        if options.truncate:
            return {"reading": f"the first {job.length} tokens (truncated)"}
        return {"reading": f"up to {job.length} tokens"}

    def described(self, job: Job) -> str:
        names = job.state["labels"].names
        return f" Labels ({len(names)}): {', '.join(f'`{n}`' for n in names[:20])}{' …' if len(names) > 20 else ''}."


@register
class MultiLabel(Classification):
    name = "multi-label"
    multi = True
