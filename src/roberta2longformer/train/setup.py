"""What every training command shares, decided in one place: the output directory, the Trainer's
arguments (precision, checkpointing, schedule, weight decay, distributed backend), resuming, and the
guard that stops a run whose loss is not a number.

Pretraining, fine-tuning and the embedding fine-tune all build their ``TrainingArguments`` with
:func:`trainer_arguments`; each adds only what is its own (evaluation strategy, best model, batch sampler).
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from transformers import ProgressCallback, TrainerCallback, TrainingArguments

from ..errors import ConversionError
from ..io.checkpoint import read_lazily
from ..io.output import atomic_output_dir, check_run_directory
from ..runtime import phase, record_resumable
from .options import PRECISIONS

logger = logging.getLogger(__name__)


def check_output(
    output_dir: str | Path, *, resume: bool = False, keep: Iterable[str | Path] = (), checkpoints: bool = True
) -> Path:
    """The run's directory: refused when it is a file, holds one of the inputs (``keep``), or is in use (not
    empty) without ``resume``. A run that saves ``checkpoints`` there is recorded as one that can resume (a
    stopped command says so)."""
    output_dir = check_run_directory(output_dir, resume=resume, keep=keep)
    if checkpoints:
        record_resumable(output_dir)
    return output_dir


def save_final(trainer, final: Path, also: Callable[[Path], None] = lambda staging: None) -> None:
    """Write the trained model into ``final`` whole or not at all: the main process saves it into a temporary
    directory, adds what ``also`` writes (tokenizer, card), and moves it into place; the others take part in
    saving (which may gather their shards) and write nothing."""
    if not trainer.is_world_process_zero():
        trainer.save_model(str(final))
        return
    with atomic_output_dir(final, force=True) as staging:
        trainer.save_model(str(staging))
        also(staging)


def guarded(trainer):
    """``trainer`` with what every run of ours has: no NaN loss, a safe point at every step, and its logs as
    lines of words under the progress bar (the Trainer prints each as a dict, numbers in quotes)."""
    trainer.add_callback(FiniteLosses())
    trainer.add_callback(SafePoints())
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(ReadableProgress())
    return trainer


class ReadableProgress(ProgressCallback):
    """The Trainer's progress bar, each log written under it as a line of words."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            self.training_bar.write(readable_log(state.global_step, state.max_steps, logs))

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        """The evaluation's bar, drawn under the training bar with cursor movements: on a terminal only (in a
        file those are escape codes; the held-out loss is logged as a line anyway)."""
        if sys.stderr.isatty():
            super().on_prediction_step(args, state, control, eval_dataloader=eval_dataloader, **kwargs)


#: Bookkeeping a user has no use for in a progress line.
_UNLOGGED = {"total_flos", "model_preparation_time", "eval_model_preparation_time"}

#: How a log's keys read to a user.
_LOG_WORDS = {
    "loss": "training loss",
    "eval_loss": "held-out loss",
    "learning_rate": "learning rate",
    "grad_norm": "gradient norm",
    "train_loss": "mean training loss",
    "train_runtime": "seconds",
}


def readable_log(step: int, max_steps: int, logs: dict[str, Any]) -> str:
    """``{'loss': 2.31, 'learning_rate': 3e-05}`` → ``step 10/100: training loss 2.31, learning rate 3e-05``."""
    parts = [
        f"{_LOG_WORDS.get(key, key.removeprefix('eval_').replace('_', ' '))} {_number(value)}"
        for key, value in logs.items()
        if key not in _UNLOGGED and not key.endswith("_per_second")
    ]
    return f"step {step}/{max_steps}: " + ", ".join(parts)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2e}" if value and abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


class SafePoints(TrainerCallback):
    """Every step is a safe point: a stop signal whose exception Python dropped stops the run here."""

    def on_step_end(self, args, state, control, **kwargs):
        phase("training")


def precision_arguments(choice: str) -> dict[str, bool]:
    """``auto``: bf16 on a GPU that has it, else fp16 on a GPU, fp32 on a CPU."""
    if choice == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return {"bf16": True}
        return {"fp16": True} if torch.cuda.is_available() else {}
    if choice in ("bf16", "fp16"):
        return {choice: True}
    if choice != "fp32":
        raise ConversionError(f"Unknown precision {choice!r}; choose {', '.join(PRECISIONS)}.")
    return {}


def checkpointing_arguments(enabled: bool) -> dict[str, bool]:
    """Gradient (activation) checkpointing under the name this transformers takes (5.x renamed it)."""
    fields = TrainingArguments.__dataclass_fields__
    return {"activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing": enabled}


def length_grouped_arguments() -> dict[str, Any]:
    """Length-grouped batches under the name this transformers takes (5.x made it a sampling strategy)."""
    if "train_sampling_strategy" in TrainingArguments.__dataclass_fields__:
        return {"train_sampling_strategy": "group_by_length"}
    return {"group_by_length": True}


def distributed() -> bool:
    """Started by torchrun / accelerate launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def weight_decay(options: Any) -> float:
    """The one decision on weight decay: none when only the position rows past N train, because decoupled
    weight decay would also shrink the frozen rows of the table."""
    if getattr(options, "only_positions_beyond", None) is not None:
        return 0.0
    return options.weight_decay


def total_steps(rows: int, options: Any) -> int:
    """Optimizer steps a run will take (for the warm-up: transformers 5 takes it in steps only)."""
    if options.max_steps:
        return options.max_steps
    world = int(os.environ.get("WORLD_SIZE", "1"))
    per_epoch = math.ceil(rows / (options.batch_size * world) / options.gradient_accumulation_steps)
    return math.ceil(options.epochs * max(per_epoch, 1))


def trainer_arguments(arguments_class: type, output_dir: str | Path, options: Any, *, steps: int, **own: Any):
    """The Trainer's arguments from a command's options (batches, learning rate and warm-up over ``steps``,
    weight decay, seed, precision, checkpointing, reporting, the distributed backend), plus the command's ``own``."""
    return arguments_class(
        output_dir=str(output_dir),
        per_device_train_batch_size=options.batch_size,
        per_device_eval_batch_size=options.batch_size,
        gradient_accumulation_steps=options.gradient_accumulation_steps,
        learning_rate=options.learning_rate,
        warmup_steps=math.ceil(options.warmup_ratio * steps),
        weight_decay=weight_decay(options),
        seed=options.seed,
        data_seed=options.seed,
        report_to=options.report_to,
        ddp_backend="gloo" if distributed() and not torch.cuda.is_available() else None,
        dataloader_pin_memory=torch.cuda.is_available(),  # pinned memory only helps copies to a GPU
        disable_tqdm=False,  # the progress bar and its ETA, whatever the command line's log level
        logging_nan_inf_filter=False,  # a NaN loss is logged as NaN (and stops the run), not averaged away
        **checkpointing_arguments(options.gradient_checkpointing),
        **precision_arguments(options.precision),
        **own,
    )


class FiniteLosses(TrainerCallback):
    """Stop a run whose loss is NaN or infinite: no later step can make its numbers right."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key in ("loss", "eval_loss"):
            value = (logs or {}).get(key)
            if value is not None and not math.isfinite(value):
                raise ConversionError(
                    f"The {'held-out' if key == 'eval_loss' else 'training'} loss became {value} at step "
                    f"{state.global_step}, so training stopped and no final model was written; lower the learning "
                    "rate, or use fp32 (--precision fp32) if half precision overflowed."
                )


def resume_point(output_dir: Path, max_steps: float) -> str | None:
    """The checkpoint ``--resume`` continues from, after saying what it found."""
    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        logger.warning("%s holds no complete checkpoint to resume from; training starts at step 0.", output_dir)
        return None
    step = checkpoint_step(checkpoint)
    if step >= max_steps:
        raise ConversionError(
            f"The run in {output_dir} already reached step {step} of --max-steps {max_steps}; "
            "raise --max-steps to train further."
        )
    return checkpoint


def checkpoint_step(checkpoint: str | Path) -> int:
    return int(json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))["global_step"])


def last_complete_checkpoint(output_dir: Path) -> str | None:
    """The newest ``checkpoint-N`` that was saved completely: a run killed while saving (or out of disk)
    leaves a partial directory behind, and resuming from it would fail or, worse, load half a state."""
    complete = [
        (int(path.name.split("-")[1]), path)
        for path in output_dir.glob("checkpoint-*")
        if path.name.split("-")[1].isdigit() and _is_complete(path)
    ]
    return str(max(complete)[1]) if complete else None


def _is_complete(checkpoint: Path) -> bool:
    """Trainer writes the model, the optimizer and scheduler, then the trainer state: all must be there and readable."""
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
        int(state["global_step"])
        files = [checkpoint / "optimizer.pt", checkpoint / "scheduler.pt"]
        if not all(path.is_file() and path.stat().st_size > 0 for path in files):
            return False
        return bool(read_lazily(checkpoint))  # every safetensors header (and its file size) checks out
    except (OSError, ValueError, KeyError, TypeError, ConversionError):
        return False
