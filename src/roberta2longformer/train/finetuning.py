"""Fine-tuning on long documents: classification (single- and multi-label) and summarization.

Built on ``transformers``' ``Trainer`` (``Seq2SeqTrainer`` for generation), so mixed precision,
gradient accumulation and checkpointing, checkpoints with resume, early stopping and multi-GPU
(``torchrun`` / ``accelerate launch``) come from there. What this module adds is the long-document
practice a user would otherwise write by hand: labels read from the data into the config, global
attention on the first token for Longformer/LED (inputs padded to whole windows only without the fast
attention backend, which reads any length), the model's own
length as the default (documents cut to it are counted and said, never silently), length-grouped
batches, and the two baselines a long model must beat: a short model reading the first N tokens
(``truncate``) or its windows with their predictions averaged (``chunks="mean"``).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConversionError
from ..fast import backend_name, enable_if, is_enabled
from ..targets import target_or_none
from . import data
from .pretraining import FiniteLosses, _checkpointing, _distributed, _precision, _resume_point, model_length

logger = logging.getLogger(__name__)

TASKS = ("auto", "classification", "multi-label", "summarization")
#: The scores a run reports (command line, model card), in this order.
REPORTED_METRICS = ("accuracy", "f1_macro", "f1_micro", "rouge1", "rouge2", "rougeL", "loss")
CHUNK_MODES = ("mean",)


@dataclass
class FinetuneOptions:
    task: str = "auto"
    text_field: str = "text"
    label_field: str = "label"
    summary_field: str = "summary"
    #: Tokens read per document (default: the model's length); longer documents are cut, and counted.
    max_length: int | None = None
    #: Short-model baselines: read the first N tokens, or every window of the model's length ("mean").
    truncate: int | None = None
    chunks: str | None = None
    epochs: float = 3.0
    max_steps: int | None = None
    batch_size: int = 8
    gradient_accumulation_steps: int = 1
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    precision: str = "auto"
    gradient_checkpointing: bool = False
    early_stopping_patience: int | None = 3
    #: Generation settings for summarization.
    max_summary_length: int = 128
    num_beams: int = 1
    seed: int = 0
    resume: bool = False
    report_to: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- data


def load_split(source: str, what: str) -> Any:
    """A JSON Lines / JSON / CSV file, or ``NAME[:SPLIT]`` of a ``datasets`` dataset (no code of its own)."""
    import datasets

    datasets.disable_progress_bars()
    path = Path(source)
    kinds = {".jsonl": "json", ".json": "json", ".csv": "csv"}
    try:
        if path.exists():
            if path.suffix not in kinds:
                raise ConversionError(f"{what} {source} is not a .jsonl, .json or .csv file; give one of those.")
            return datasets.load_dataset(kinds[path.suffix], data_files=str(path), split="train")
        if source.startswith((".", "/", "~")) or path.suffix in kinds:
            raise ConversionError(f"{what} {source} does not exist; give a JSON Lines or CSV file, or a datasets name.")
        name, _, split = source.partition(":")
        return datasets.load_dataset(name, split=split or what.removeprefix("--"), trust_remote_code=False)
    except ConversionError:
        raise
    except Exception as error:  # datasets raises many types (no such dataset, offline, bad JSON)
        first = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        raise ConversionError(f"Could not read {what} {source} ({first}); give a JSON Lines or CSV file.") from None


def require_fields(split: Any, fields: Sequence[str], what: str, source: str) -> None:
    if len(split) == 0:
        raise ConversionError(f"{what} {source} has no rows; give a file with examples in it.")
    missing = [name for name in fields if name not in split.column_names]
    if missing:
        raise ConversionError(
            f"{what} {source} has no field {', '.join(map(repr, missing))} (it has {', '.join(split.column_names)}); "
            "name the right ones with --text-field / --label-field / --summary-field."
        )


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
    return (0, float(name), "") if _is_number(name) else (1, 0.0, name)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------- model


def resolve_task(task: str, config: Any, train: Any, options: FinetuneOptions) -> str:
    """``auto``: summarization for an encoder-decoder with a summary field, else (multi-label) classification."""
    if task not in TASKS:
        raise ConversionError(f"Unknown --task {task!r}; choose from {', '.join(TASKS)}.")
    encoder_decoder = bool(getattr(config, "is_encoder_decoder", False))
    if task == "auto":
        if encoder_decoder and options.summary_field in train.column_names:
            task = "summarization"
        else:
            values = train[options.label_field] if options.label_field in train.column_names else []
            task = "multi-label" if values and isinstance(values[0], (list, tuple)) else "classification"
    if task == "summarization" and not encoder_decoder:
        raise ConversionError(
            f"Summarization needs an encoder-decoder model (e.g. LED: convert --to led), and {config.model_type} "
            "is an encoder; fine-tune it for classification, or convert to LED."
        )
    if task != "summarization" and encoder_decoder:
        raise ConversionError(
            "Classification fine-tunes an encoder model; this is an encoder-decoder, which this command fine-tunes "
            "for summarization (--task summarization with a --summary-field)."
        )
    if options.chunks is not None and task == "summarization":
        raise ConversionError("--chunks applies to classification; summarization reads each document once.")
    return task


def load_classifier(location: str, labels: Labels) -> tuple[Any, str | None]:
    """The model with a classification head for ``labels``, and a line saying where the head came from."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(location, trust_remote_code=False)
    saved = (getattr(config, "architectures", None) or [""])[0]
    id2label = dict(enumerate(labels.names))
    same_labels = (
        saved.endswith("ForSequenceClassification")
        and [config.id2label[i] for i in sorted(config.id2label)] == labels.names
    )
    model, info = AutoModelForSequenceClassification.from_pretrained(
        location,
        num_labels=len(labels.names),
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
        problem_type="multi_label_classification" if labels.multi else "single_label_classification",
        ignore_mismatched_sizes=not same_labels,
        output_loading_info=True,
        trust_remote_code=False,
    )
    fresh = sorted({*info.get("missing_keys", ()), *(k for k, *_ in info.get("mismatched_keys", ()))})
    backbone = [key for key in fresh if "classifier" not in key and "score" not in key and "pooler" not in key]
    if backbone:
        raise ConversionError(
            f"{location} lacks {len(backbone)} backbone weight(s) ({', '.join(backbone[:3])}), which would start at "
            "random; give a complete checkpoint."
        )
    if not fresh:
        return model, None
    if saved.endswith("ForMaskedLM"):
        kind = "a masked-LM head, which is not used for classification"
    elif saved.endswith("ForSequenceClassification"):
        kind = f"a classification head for other labels ({', '.join(map(str, config.id2label.values()))})"
    else:
        kind = f"no head ({saved or 'a base model'})"
    return model, (
        f"A fresh classification head for {len(labels.names)} labels ({', '.join(labels.names[:6])}"
        f"{' …' if len(labels.names) > 6 else ''}) is trained: the checkpoint had {kind}."
    )


def load_seq2seq(location: str, summary_length: int) -> Any:
    from transformers import AutoModelForSeq2SeqLM

    model, info = AutoModelForSeq2SeqLM.from_pretrained(location, output_loading_info=True, trust_remote_code=False)
    decoder = getattr(model.config, "max_decoder_position_embeddings", None) or model.config.max_position_embeddings
    if summary_length > decoder:
        raise ConversionError(
            f"--max-summary-length {summary_length} is beyond the decoder's {decoder} positions; give at most {decoder} "
            "(or convert with a longer --decoder-max-length)."
        )
    if info.get("missing_keys"):
        raise ConversionError(
            f"{location} lacks {len(info['missing_keys'])} weight(s) of a sequence-to-sequence model "
            f"({', '.join(sorted(info['missing_keys'])[:3])}); give a complete encoder-decoder checkpoint."
        )
    return model


def window_multiple(model: Any) -> int | None:
    """Longformer and LED pad every input to whole attention windows; padding in the collator instead
    keeps batches the same size for every layer. With the fast backend on they read any length, and
    nothing is padded beyond the longest input of the batch."""
    windows = getattr(model.config, "attention_window", None)
    if windows is None or is_enabled(model):
        return None
    return max(windows) if isinstance(windows, (list, tuple)) else int(windows)


# ------------------------------------------------------------------------------------------ encoding


@dataclass
class Encoded:
    train: Any
    eval: Any
    test: Any | None
    #: For ``chunks``: the document index of each eval/test row (their predictions are averaged per document).
    eval_docs: list[int] | None = None
    test_docs: list[int] | None = None
    cut: dict[str, int] = field(default_factory=dict)


def encode_classification(tokenizer, splits: dict[str, Any], labels: Labels, length: int, options: FinetuneOptions):
    """Token ids and labels per split; with ``chunks`` one row per window, with its document's label.

    The tokenizer cuts each document into windows of ``length`` (its ``return_overflowing_tokens``);
    without ``chunks`` only the first is kept, and documents that had more are counted.
    """
    import datasets

    encoded: dict[str, Any] = {}
    docs: dict[str, list[int]] = {}
    cut: dict[str, int] = {}
    for name, split in splits.items():
        if split is None:
            continue
        texts = [str(t) for t in split[options.text_field]]
        targets = [labels.encode(v, f"--{name} row {i + 1}") for i, v in enumerate(split[options.label_field])]
        windows = tokenizer(texts, truncation=True, max_length=length, return_overflowing_tokens=True)
        owners = list(windows["overflow_to_sample_mapping"])  # each window's document, in order
        first = {doc: i for i, doc in reversed(list(enumerate(owners)))}
        keep = list(range(len(owners))) if options.chunks else sorted(first.values())
        cut[name] = sum(count > 1 for count in Counter(owners).values())  # documents with more than one window
        encoded[name] = datasets.Dataset.from_dict(
            {
                "input_ids": [windows["input_ids"][i] for i in keep],
                "attention_mask": [windows["attention_mask"][i] for i in keep],
                "labels": [targets[owners[i]] for i in keep],
            }
        )
        docs[name] = [owners[i] for i in keep]
    return Encoded(
        encoded["train"],
        encoded["eval"],
        encoded.get("test"),
        docs["eval"] if options.chunks else None,
        docs.get("test") if options.chunks else None,
        cut,
    )


def encode_summarization(tokenizer, splits: dict[str, Any], length: int, options: FinetuneOptions) -> Encoded:
    import datasets

    encoded, cut = {}, {}
    for name, split in splits.items():
        if split is None:
            continue
        texts = [str(t) for t in split[options.text_field]]
        inputs = tokenizer(texts, truncation=False)
        cut[name] = sum(len(i) > length for i in inputs["input_ids"])
        ids = [i[: length - 1] + [i[-1]] if len(i) > length else i for i in inputs["input_ids"]]
        data = {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}
        if options.summary_field in split.column_names:
            summaries = [str(t) for t in split[options.summary_field]]
            data["labels"] = tokenizer(text_target=summaries, truncation=True, max_length=options.max_summary_length)[
                "input_ids"
            ]
        encoded[name] = datasets.Dataset.from_dict(data)
    return Encoded(encoded["train"], encoded["eval"], encoded.get("test"), cut=cut)


class GlobalFirstToken:
    """Wraps a collator (which pads, see :func:`window_multiple`) and adds a ``global_attention_mask`` with the first token
    global, as Longformer classification and LED summarization are trained (the Longformer paper, §6)."""

    def __init__(self, collator, global_first: bool) -> None:
        self.collator = collator
        self.global_first = global_first

    def __call__(self, features):
        batch = self.collator(features)
        return data.with_first_token_global(batch) if self.global_first else batch


# ------------------------------------------------------------------------------------------- metrics


def classification_metrics(logits: np.ndarray, labels: np.ndarray, multi: bool) -> dict[str, float]:
    """accuracy, macro- and micro-F1 (scikit-learn); multi-label: a label is predicted at probability 0.5,
    and accuracy is the exact-match ratio."""
    from sklearn.metrics import accuracy_score, f1_score

    if multi:
        predicted = (1 / (1 + np.exp(-logits)) >= 0.5).astype(int)
        truth = labels.astype(int)
    else:
        predicted, truth = logits.argmax(-1), labels.astype(int)
    return {
        "accuracy": float(accuracy_score(truth, predicted)),
        "f1_macro": float(f1_score(truth, predicted, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(truth, predicted, average="micro", zero_division=0)),
    }


def mean_per_group(values: np.ndarray, groups: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``values``' rows per group, groups in ascending order, and each group's first row
    (one pass: ``groups`` come in runs, as the windows of each document do)."""
    groups = np.asarray(groups)
    if len(groups) > 1 and (np.diff(groups) < 0).any():
        raise ValueError("groups must come in ascending runs")
    _, starts, counts = np.unique(groups, return_index=True, return_counts=True)
    return np.add.reduceat(values, starts, axis=0) / counts[:, None], starts


def per_document(logits: np.ndarray, labels: np.ndarray, docs: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Window predictions averaged per document (``chunks="mean"``); unchanged without windows."""
    if docs is None:
        return logits, labels
    mean, starts = mean_per_group(logits, docs)
    return mean, labels[starts]


def rouge_scores(predictions: list[str], references: list[str]) -> dict[str, float]:
    """ROUGE-1/2/L F-measures (Google's rouge-score package, the one the Hub's ROUGE metric wraps)."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    scores = [scorer.score(ref, pred) for pred, ref in zip(predictions, references)]
    return {name: float(np.mean([s[name].fmeasure for s in scores])) for name in ("rouge1", "rouge2", "rougeL")}


# ------------------------------------------------------------------------------------------- running


def finetune(
    model_location: str,
    train_source: str,
    eval_source: str,
    test_source: str | None,
    output_dir: str | Path,
    options: FinetuneOptions,
    *,
    fast_attention: bool = True,
    allow_pickle: bool = False,
) -> dict[str, Any]:
    """Fine-tune the model in ``model_location``; write ``output_dir/final``, ``eval_results.json`` and, with
    a test set, ``test_results.json`` and ``predictions.jsonl``. Everything is checked before training starts."""
    from transformers import EarlyStoppingCallback

    from ..core.loading import load_config, load_tokenizer, resolve_source
    from ..io.output import check_output_dir

    output_dir = Path(output_dir)
    if output_dir.exists() and any(output_dir.iterdir()) and not options.resume:
        raise ConversionError(
            f"{output_dir} is in use (not empty); pass --resume to continue the run in it, or choose a new directory."
        )
    check_output_dir(output_dir, force=True, keep=[model_location, train_source, eval_source])
    if options.chunks is not None and options.chunks not in CHUNK_MODES:
        raise ConversionError(f"Unknown --chunks {options.chunks!r}; choose {', '.join(CHUNK_MODES)}.")
    location = resolve_source(model_location)
    config = load_config(location, allow_pickle=allow_pickle)
    tokenizer = load_tokenizer(location)
    if tokenizer is None:
        raise ConversionError(f"{location} has no tokenizer; save it next to the model with save_pretrained().")
    splits = {"train": load_split(train_source, "--train"), "eval": load_split(eval_source, "--eval")}
    splits["test"] = load_split(test_source, "--test") if test_source else None
    task = resolve_task(options.task, config, splits["train"], options)
    needed = [options.text_field, options.summary_field if task == "summarization" else options.label_field]
    for name, source in (("train", train_source), ("eval", eval_source), ("test", test_source)):
        if splits[name] is not None:
            require_fields(splits[name], needed if name != "test" else needed[:1], f"--{name}", source)

    labels = None
    if task == "summarization":
        model, head_note = load_seq2seq(location, options.max_summary_length), None
    else:
        labels = Labels.from_data(list(splits["train"][options.label_field]))
        if (labels.multi and task == "classification") or (not labels.multi and task == "multi-label"):
            raise ConversionError(
                f"--task {task} but the labels are {'lists' if labels.multi else 'single values'}; "
                f"use --task {'multi-label' if labels.multi else 'classification'} (or auto)."
            )
        model, head_note = load_classifier(location, labels)
    length = _reading_length(model, options)
    if task == "summarization":
        encoded = encode_summarization(tokenizer, splits, length, options)
        test_answered = splits["test"] is not None and options.summary_field in splits["test"].column_names
    else:
        test_answered = splits["test"] is not None and options.label_field in splits["test"].column_names
        if splits["test"] is not None and not test_answered:  # predictions only: a placeholder label to encode
            splits["test"] = splits["test"].add_column(options.label_field, [labels.names[0]] * len(splits["test"]))
        encoded = encode_classification(tokenizer, splits, labels, length, options)
    notes = [*([head_note] if head_note else []), *_cut_notes(encoded.cut, length, options)]
    for note in notes:
        logger.warning(note)

    enable_if(model, fast_attention)
    target = target_or_none(model.config)
    global_first = target is not None and target.uses_global_tokens
    trainer = _trainer(model, tokenizer, encoded, task, labels, options, output_dir, global_first)
    if options.early_stopping_patience:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=options.early_stopping_patience))
    resume_from = None
    if options.resume:
        resume_from = _resume_point(output_dir, options.max_steps or math.inf)
    before = None if resume_from else _scores(trainer.evaluate())  # what fine-tuning is measured against
    result = trainer.train(resume_from_checkpoint=resume_from)
    scores = _scores(trainer.evaluate())
    final = output_dir / "final"
    trainer.save_model(str(final))
    summary: dict[str, Any] = {
        "task": task,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "max_length": length,
        "reading": _reading(options, length),
        "train_documents": len(splits["train"]),
        "eval_documents": len(splits["eval"]),
        "eval": scores,
        "eval_before_training": before,
        "attention": backend_name(trainer.model),
        "resumed_from": resume_from,
        "notes": notes,
        "final": str(final),
    }
    if encoded.test is not None:
        summary["test"] = _predict(trainer, encoded, task, labels, tokenizer, test_answered, output_dir)
    if trainer.is_world_process_zero():
        tokenizer.save_pretrained(str(final))
        recorded = {**scores, **({"before_training": before} if before else {})}
        (output_dir / "eval_results.json").write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
        from ..io.card import finetuning_card
        from ..io.output import give_normal_permissions

        card = finetuning_card(
            trainer.model,
            summary,
            source_name=model_location,
            data={"train": train_source, "eval": eval_source, "test": test_source},
            options=asdict(options),
        )
        (final / "README.md").write_text(card, encoding="utf-8")
        give_normal_permissions(final)
    return summary


def _scores(metrics: dict[str, float]) -> dict[str, float]:
    """The Trainer's ``eval_…`` metrics under their own names, without the timings."""
    return {
        k.removeprefix("eval_"): v
        for k, v in metrics.items()
        if not k.endswith(("_runtime", "_per_second")) and k != "epoch"
    }


def _reading_length(model: Any, options: FinetuneOptions) -> int:
    longest = model_length(model) if not model.config.is_encoder_decoder else _encoder_length(model)
    length = options.truncate or options.max_length or longest
    if length > longest:
        raise ConversionError(
            f"--max-length {length} is beyond the model's {longest} positions; resize the model first "
            "(roberta2longformer resize) or give a shorter length."
        )
    if options.truncate and options.chunks:
        raise ConversionError("--truncate and --chunks are two different baselines; choose one.")
    return length


def _encoder_length(model: Any) -> int:
    target = target_or_none(model.config)
    return target.max_length(model.config) if target else model.config.max_position_embeddings


def _reading(options: FinetuneOptions, length: int) -> str:
    if options.chunks:
        return f"every window of {length} tokens, predictions averaged per document"
    if options.truncate:
        return f"the first {length} tokens (truncated)"
    return f"up to {length} tokens"


def _cut_notes(cut: dict[str, int], length: int, options: FinetuneOptions) -> list[str]:
    if options.chunks:
        return []
    return [
        f"{count} --{name} document(s) are longer than {length} tokens and are read up to their first {length}"
        + (" (--truncate)" if options.truncate else "; resize the model to read them whole")
        + "."
        for name, count in cut.items()
        if count
    ]


def _trainer(model, tokenizer, encoded: Encoded, task, labels, options: FinetuneOptions, output_dir, global_first):
    from transformers import (
        DataCollatorForSeq2Seq,
        DataCollatorWithPadding,
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        Trainer,
        TrainingArguments,
    )

    generating = task == "summarization"
    best = "rougeL" if generating else "f1_macro"
    arguments_class = Seq2SeqTrainingArguments if generating else TrainingArguments
    extra = (
        {"predict_with_generate": True, "generation_max_length": options.max_summary_length,
         "generation_num_beams": options.num_beams}
        if generating
        else {}
    )  # fmt: skip
    arguments = arguments_class(
        **schedule_arguments(output_dir, options, len(encoded.train)),
        weight_decay=options.weight_decay,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=best,
        greater_is_better=True,
        **_length_grouped(),  # batches of similar lengths: less padding on documents of every size
        logging_steps=10,
        seed=options.seed,
        data_seed=options.seed,
        report_to=options.report_to,
        ddp_backend="gloo" if _distributed() and not torch.cuda.is_available() else None,
        ddp_find_unused_parameters=True,  # e.g. the pooler, which a classification head on the CLS state leaves unused
        dataloader_pin_memory=torch.cuda.is_available(),
        disable_tqdm=False,
        logging_nan_inf_filter=False,
        **_checkpointing(options.gradient_checkpointing),
        **_precision(options.precision),
        **extra,
    )
    multiple = window_multiple(model)
    if generating:
        # Not padded to whole windows here: that would pad the labels too, past the decoder's positions;
        # LED's encoder pads its own input to whole windows.
        collator = DataCollatorForSeq2Seq(tokenizer, model=model)
        metrics = _summary_metrics(tokenizer)
        trainer_class = Seq2SeqTrainer
    else:
        collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)
        metrics = _classification_metrics(labels, encoded.eval_docs)
        trainer_class = Trainer
    return trainer_class(
        model=model,
        args=arguments,
        train_dataset=encoded.train,
        eval_dataset=encoded.eval,
        data_collator=GlobalFirstToken(collator, global_first),
        processing_class=tokenizer,
        compute_metrics=metrics,
        callbacks=[FiniteLosses()],
    )


def _length_grouped() -> dict[str, Any]:
    """Length-grouped batches under the name this transformers takes (5.x made it a sampling strategy)."""
    from transformers import TrainingArguments

    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def schedule_arguments(output_dir, options, rows: int) -> dict[str, Any]:
    """The training arguments every fine-tuning sets from its options (epochs or steps, batches, the
    learning rate and its warm-up): shared by classification, summarization and embeddings."""
    return dict(
        output_dir=str(output_dir),
        num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1,
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate,
        warmup_steps=math.ceil(options.warmup_ratio * _total_steps(rows, options)),
    )


def _total_steps(rows: int, options) -> int:
    """Optimizer steps the run will take (for the warm-up: transformers 5 takes it in steps only)."""
    if options.max_steps:
        return options.max_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = math.ceil(rows / (options.batch_size * world) / options.gradient_accumulation_steps)
    return math.ceil(options.epochs * max(per_epoch, 1))


def _classification_metrics(labels: Labels, docs: list[int] | None):
    def compute(prediction) -> dict[str, float]:
        logits, truth = per_document(np.asarray(prediction.predictions), np.asarray(prediction.label_ids), docs)
        return classification_metrics(logits, truth, labels.multi)

    return compute


def _summary_metrics(tokenizer):
    def compute(prediction) -> dict[str, float]:
        predicted = np.where(prediction.predictions < 0, tokenizer.pad_token_id, prediction.predictions)
        truth = np.where(prediction.label_ids < 0, tokenizer.pad_token_id, prediction.label_ids)
        return rouge_scores(
            tokenizer.batch_decode(predicted, skip_special_tokens=True),
            tokenizer.batch_decode(truth, skip_special_tokens=True),
        )

    return compute


def _predict(trainer, encoded: Encoded, task, labels, tokenizer, answered: bool, output_dir: Path) -> dict | None:
    """Predictions for every test document in ``predictions.jsonl``; scores when the test set has its answers."""
    trainer.compute_metrics = None  # it knows the eval set's documents; the test set is scored below
    output = trainer.predict(encoded.test)
    rows = []
    scores = None
    if task == "summarization":
        ids = np.where(output.predictions < 0, tokenizer.pad_token_id, output.predictions)
        texts = tokenizer.batch_decode(ids, skip_special_tokens=True)
        rows = [{"summary": text} for text in texts]
        if answered:
            truth = np.where(output.label_ids < 0, tokenizer.pad_token_id, output.label_ids)
            scores = rouge_scores(texts, tokenizer.batch_decode(truth, skip_special_tokens=True))
    else:
        logits, truth = per_document(np.asarray(output.predictions), np.asarray(output.label_ids), encoded.test_docs)
        if labels.multi:
            chosen = 1 / (1 + np.exp(-logits)) >= 0.5
            rows = [{"labels": [labels.names[i] for i in np.flatnonzero(row)]} for row in chosen]
        else:
            rows = [{"label": labels.names[int(i)]} for i in logits.argmax(-1)]
        if answered:
            scores = classification_metrics(logits, truth, labels.multi)
    if trainer.is_world_process_zero():
        with (output_dir / "predictions.jsonl").open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if scores is not None:
            (output_dir / "test_results.json").write_text(json.dumps(scores, indent=2) + "\n", encoding="utf-8")
    return scores
