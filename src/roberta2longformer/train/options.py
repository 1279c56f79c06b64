"""The options of ``pretrain`` and ``finetune``, declared once: defaults, help and ranges here; the command
line builds its options from these fields, and a value out of range is refused however it was given.

Nothing heavy is imported here: the command line reads these declarations when it starts.
"""

from __future__ import annotations

from dataclasses import MISSING, Field, dataclass, fields
from typing import Any

from ..settings import check_settings, setting

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _precision() -> str:
    return setting("auto", "auto: bf16/fp16 on a GPU that has it.", choices=PRECISIONS)


@dataclass
class PretrainOptions:
    """What ``roberta2longformer pretrain`` takes (see ``--help`` for each)."""

    max_steps: int = setting(1000, "Optimizer steps.", low=1)
    batch_size: int = setting(8, "Blocks per device per step.", low=1)
    gradient_accumulation_steps: int = setting(1, "Steps to accumulate before each update.", low=1)
    learning_rate: float = setting(3e-5, "Peak learning rate.", low=0)
    schedule: str = setting(
        "constant_with_warmup", "transformers lr schedule: constant_with_warmup, linear, cosine, ..."
    )
    warmup_ratio: float = setting(0.05, "Fraction of the steps spent warming up.", low=0, high=1)
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay.", low=0)
    adam_beta2: float = setting(0.98, "AdamW's beta2.", low=0, high=1, high_open=True)
    mlm_probability: float = setting(0.15, "Fraction of tokens masked.", low=0, high=1, low_open=True, high_open=True)
    held_out: float = setting(0.05, "Fraction of the documents held out for evaluation.", low=0, high=1, high_open=True)
    eval_steps: int = setting(100, "Evaluate every N steps.", low=1)
    save_steps: int = setting(100, "Checkpoint every N steps (a killed run resumes from the last).", low=1)
    logging_steps: int = setting(10, "Log (metrics.csv) every N steps.", low=1)
    save_total_limit: int | None = setting(2, "Checkpoints kept.", low=1, cli=False)
    gradient_checkpointing: bool = setting(False, "Recompute activations to save memory.")
    precision: str = _precision()
    seed: int = setting(0, "Seed for the split, the masks and the data order.", low=0, high=2**32 - 1)
    max_length: int | None = setting(None, "Block length.", low=3, default_text="the model's length")
    text_field: str = setting("text", "The text field of JSON Lines, JSON and CSV data.")
    global_cls: bool = setting(
        False, "Longformer: global attention on each block's first token (trains the global projections)."
    )
    only_positions_beyond: int | None = setting(
        None, "Train only the position rows past this many tokens (the paper's ablation).", low=0
    )
    resume: bool = setting(False, "Continue the run in --output from its last checkpoint.")
    report_to: list[str] = setting([], "Where the Trainer reports (tensorboard, …).", cli=False)

    def __post_init__(self) -> None:
        check_settings(self)


#: The tasks' shared and own options; ``None`` defaults are the chosen task's (see ``Task.defaults``).
@dataclass
class FinetuneOptions:
    """What ``roberta2longformer finetune`` takes (see ``--help`` for each)."""

    task: str = setting("auto", "The task (see --help).", cli=False)
    text_field: str = setting("text", "The document field.")
    label_field: str = setting("label", "Classification: the label field (a list for multi-label).")
    summary_field: str = setting("summary", "Summarization: the reference summary field.")
    max_length: int | None = setting(
        None,
        "Tokens read per document; longer ones are cut to it, and the count is said.",
        low=2,
        default_text="the model's length",
    )
    truncate: int | None = setting(
        None, "Baseline: read only the first N tokens of each document (e.g. a short model's 512).", low=2
    )
    chunks: str | None = setting(
        None,
        "Baseline: read every window of the model's length and average the windows' predictions.",
        choices=("mean",),
    )
    epochs: float | None = setting(
        None, "Passes over the training data.", low=0, low_open=True, default_text="3 (embedding: 1)"
    )
    max_steps: int | None = setting(None, "Optimizer steps.", low=1, default_text="--epochs")
    batch_size: int = setting(8, "Documents per device per step.", low=1)
    gradient_accumulation_steps: int = setting(1, "Steps to accumulate per update.", low=1)
    learning_rate: float | None = setting(
        None, "Peak learning rate (linear decay).", low=0, default_text="3e-5 (embedding: 2e-5)"
    )
    warmup_ratio: float = setting(0.1, "Fraction of the steps warming up.", low=0, high=1)
    weight_decay: float = setting(0.01, "AdamW's decoupled weight decay (none when only positions train).", low=0)
    precision: str = _precision()
    gradient_checkpointing: bool = setting(False, "Recompute activations to save memory.")
    early_stopping_patience: int | None = setting(
        3,
        "Stop after N evaluations without improving the task's best metric (macro-F1, ROUGE-L); 0: never. "
        "The best one is kept.",
        flag="early_stopping",
        low=0,
    )
    max_summary_length: int = setting(128, "Summarization: tokens generated.", low=1)
    num_beams: int = setting(1, "Summarization: beams while generating.", low=1)
    only_positions_beyond: int | None = setting(
        None,
        "Embedding: train only the position rows of tokens at index ≥ N (e.g. the source's 256), so inputs of up "
        "to N tokens embed exactly as before (verify proves it).",
        low=0,
    )
    shift_positions: bool = setting(
        False,
        "Embedding, with --only-positions-beyond: train the new rows on short documents by shifting their position "
        "ids (PoSE): a random part of each document reads positions a random distance further on, up to the "
        "model's length, so every new row is trained without long documents.",
    )
    passage_words: int = setting(48, "Embedding: words per training passage.", low=1)
    passages_per_document: int = setting(
        1, "Embedding: (passage, document) pairs drawn from each training document per epoch.", low=1
    )
    mini_batch_size: int | None = setting(
        None, "Embedding: compute each batch's loss N texts at a time (GradCache: same gradients, memory for N).", low=1
    )
    attention_dropout: float | None = setting(
        None,
        "Embedding: attention dropout while training (0 trains several times faster on CPU).",
        low=0,
        high=1,
        default_text="the model's",
    )
    evaluate_before: bool = setting(
        True, "Score the evaluation data before training too (what training is measured against)."
    )
    seed: int = setting(0, "Seed for the head, the data order and dropout.", low=0, high=2**32 - 1)
    resume: bool = setting(False, "Continue the run in --output from its last checkpoint.")
    report_to: list[str] = setting([], "Where the Trainer reports (tensorboard, …).", cli=False)

    def __post_init__(self) -> None:
        check_settings(self)

    def given(self) -> set[str]:
        """The fields set to something other than their default."""
        return {f.name for f in fields(self) if getattr(self, f.name) != _default(f)}


def _default(field: Field) -> Any:
    return field.default_factory() if field.default_factory is not MISSING else field.default
