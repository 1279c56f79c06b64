"""The mechanics the supervised tasks (classification, multi-label, summarization) share: loading the model
and tokenizer, encoding documents at the length read (cut ones counted and said), global attention on the
first token, and their Trainer. Imported when a run starts (it loads transformers and datasets), never with
the command line's ``--help``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import datasets
from torch.utils.data import SequentialSampler
from transformers import (
    AutoModelForSeq2SeqLM,
    AutoModelForSequenceClassification,
    DataCollatorForSeq2Seq,
    DataCollatorWithPadding,
    EarlyStoppingCallback,
    Seq2SeqTrainer,
    Seq2SeqTrainingArguments,
    Trainer,
    TrainingArguments,
)

from ...core.loading import load_pretrained, load_tokenizer
from ...errors import ConversionError
from ...fast import is_enabled
from ...targets import input_length, target_or_none
from ..options import FinetuneOptions
from ..setup import guarded, length_grouped_arguments, total_steps, trainer_arguments
from .base import Job, Task

if TYPE_CHECKING:
    from .classification import Labels


def trained_tokenizer(location: str):
    tokenizer = load_tokenizer(location)
    if tokenizer is None:
        raise ConversionError(f"{location} has no tokenizer; save it next to the model with save_pretrained().")
    return tokenizer


def reading_length(model: Any, options: FinetuneOptions) -> int:
    """Tokens read per document: ``--truncate`` or ``--max-length``, else all the model (its encoder) reads."""
    longest = input_length(model.config)
    length = options.truncate or options.max_length or longest
    if length > longest:
        raise ConversionError(
            f"--max-length {length} is beyond the model's {longest} positions; resize the model first "
            "(roberta2longformer resize) or give a shorter length."
        )
    if options.truncate and options.chunks:
        raise ConversionError("--truncate and --chunks are two different baselines; choose one.")
    return length


@dataclass
class CutNotes:
    """What the user must know about documents longer than the length read."""

    cut: dict[str, int]
    length: int
    options: FinetuneOptions

    def lines(self) -> list[str]:
        if self.options.chunks:
            return []
        return [
            f"{count} --{name} document(s) are longer than {self.length} tokens and are read up to their first "
            f"{self.length}"
            + (" (--truncate)" if self.options.truncate else "; resize the model to read them whole")
            + "."
            for name, count in self.cut.items()
            if count
        ]


def padding_collator(tokenizer, multiple: int | None):
    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=multiple)


def seq2seq_collator(tokenizer, model):
    return DataCollatorForSeq2Seq(tokenizer, model=model)


def input_multiple(model: Any) -> int | None:
    """What to pad each batch to a multiple of: the target's input multiple (a Longformer's window), unless
    the fast attention backend, which reads any length, computes the model."""
    target = target_or_none(model.config)
    return None if target is None or is_enabled(model) else target.input_multiple(model.config)


class GlobalFirstToken:
    """Wraps a collator (which pads) and adds the inputs the model's target asks for with its first token global
    (a Longformer's or LED's ``global_attention_mask``), as Longformer classification and LED summarization are
    trained (the Longformer paper, §6); other models get the batch as the collator made it."""

    def __init__(self, collator, model: Any) -> None:
        self.collator = collator
        self.target = target_or_none(model.config)

    def __call__(self, features):
        batch = self.collator(features)
        if self.target is not None:
            batch.update(self.target.extra_inputs(batch["input_ids"], True))
        return batch


class InOrder:
    """Evaluation and prediction batches in the data's order, training batches still grouped by length.

    transformers' length grouping (``group_by_length``, 5.x's ``train_sampling_strategy``) also reorders the
    evaluation batches (``Trainer._get_eval_sampler``, 4.57 and 5.x alike): the windows of a document would then be
    averaged with other documents' (``--chunks``), and predictions written beside the wrong ids. Here the
    evaluation sampler is the one transformers uses without grouping.
    """

    def _get_eval_sampler(self, eval_dataset):
        if eval_dataset is None:
            return None
        return SequentialSampler(eval_dataset) if self.args.world_size <= 1 else None  # accelerate shards in order


class InOrderTrainer(InOrder, Trainer):
    pass


class InOrderSeq2SeqTrainer(InOrder, Seq2SeqTrainer):
    pass


def supervised_trainer(task: Task, job: Job, output_dir: Path, options: FinetuneOptions, collator, metrics) -> Any:
    """The Trainer (``Seq2SeqTrainer`` for a task that generates): evaluated and saved every epoch, the best
    checkpoint by the task's best metric kept, batches grouped by length, early stopping when asked."""
    generating = task.name == "summarization"
    own = (
        {"predict_with_generate": True, "generation_max_length": options.max_summary_length,
         "generation_num_beams": options.num_beams}
        if generating
        else {}
    )  # fmt: skip
    arguments = trainer_arguments(
        Seq2SeqTrainingArguments if generating else TrainingArguments,
        output_dir,
        options,
        steps=total_steps(len(job.train), options),
        num_train_epochs=options.epochs,
        max_steps=options.max_steps or -1,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=task.best_metric,
        greater_is_better=True,
        logging_steps=10,
        ddp_find_unused_parameters=True,  # e.g. the pooler, which a classification head on the CLS state leaves unused
        **length_grouped_arguments(),  # batches of similar lengths: less padding on documents of every size
        **own,
    )
    trainer = guarded(
        (InOrderSeq2SeqTrainer if generating else InOrderTrainer)(
            model=job.model,
            args=arguments,
            train_dataset=job.train,
            eval_dataset=job.eval,
            data_collator=collator,
            processing_class=job.tokenizer,
            compute_metrics=metrics,
        )
    )
    if options.early_stopping_patience:
        trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=options.early_stopping_patience))
    return trainer


def load_classifier(location: str, labels: Labels, config: Any, allow_pickle: bool) -> tuple[Any, str | None]:
    """The model with a classification head for ``labels``, and a line saying where the head came from."""
    saved = (getattr(config, "architectures", None) or [""])[0]
    id2label = dict(enumerate(labels.names))
    same_labels = (
        saved.endswith("ForSequenceClassification")
        and [config.id2label[i] for i in sorted(config.id2label)] == labels.names
    )
    model, info = load_pretrained(
        AutoModelForSequenceClassification,
        location,
        allow_pickle=allow_pickle,
        num_labels=len(labels.names),
        id2label=id2label,
        label2id={name: i for i, name in id2label.items()},
        problem_type="multi_label_classification" if labels.multi else "single_label_classification",
        ignore_mismatched_sizes=not same_labels,
        output_loading_info=True,
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


def encode_windows(tokenizer, splits: dict[str, Any], labels: Labels, length: int, options: FinetuneOptions):
    """Token ids and labels per split, and with ``chunks`` one row per window with its document's label.

    The tokenizer cuts each document into windows of ``length`` (its ``return_overflowing_tokens``); without
    ``chunks`` only the first is kept, and documents that had more are counted. Returns (encoded splits, the
    document of each row per split when reading windows, the count of documents cut per split). A test split
    without labels gets the first label as a placeholder (its predictions are not scored).
    """
    encoded: dict[str, Any] = {}
    owners: dict[str, list[int]] = {}
    cut: dict[str, int] = {}
    for name, split in splits.items():
        if split is None:
            continue
        if options.label_field in split.column_names:
            targets = [labels.encode(v, f"--{name} {i}") for i, v in zip(split["id"], split[options.label_field])]
        else:
            targets = [labels.encode(labels.names[:1] if labels.multi else labels.names[0], "")] * len(split)
        windows = tokenizer(list(split["text"]), truncation=True, max_length=length, return_overflowing_tokens=True)
        documents = list(windows["overflow_to_sample_mapping"])  # each window's document, in order
        first = {doc: i for i, doc in reversed(list(enumerate(documents)))}
        keep = list(range(len(documents))) if options.chunks else sorted(first.values())
        cut[name] = sum(count > 1 for count in Counter(documents).values())  # documents with more than one window
        encoded[name] = datasets.Dataset.from_dict(
            {
                "input_ids": [windows["input_ids"][i] for i in keep],
                "attention_mask": [windows["attention_mask"][i] for i in keep],
                "labels": [targets[documents[i]] for i in keep],
            }
        )
        if options.chunks:
            owners[name] = [documents[i] for i in keep]
    return encoded, owners, cut


def load_seq2seq(location: str, summary_length: int, allow_pickle: bool) -> Any:
    model, info = load_pretrained(AutoModelForSeq2SeqLM, location, allow_pickle=allow_pickle, output_loading_info=True)
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


def encode_summaries(tokenizer, split: Any, length: int, options: FinetuneOptions) -> tuple[Any, int]:
    """The documents (cut to ``length``, keeping their end token) and, where given, the summaries as labels;
    and how many documents were cut."""
    inputs = tokenizer(list(split["text"]), truncation=False)
    cut = sum(len(i) > length for i in inputs["input_ids"])
    ids = [i[: length - 1] + [i[-1]] if len(i) > length else i for i in inputs["input_ids"]]
    columns = {"input_ids": ids, "attention_mask": [[1] * len(i) for i in ids]}
    if options.summary_field in split.column_names:
        summaries = [str(t) for t in split[options.summary_field]]
        columns["labels"] = tokenizer(text_target=summaries, truncation=True, max_length=options.max_summary_length)[
            "input_ids"
        ]
    return datasets.Dataset.from_dict(columns), cut
