"""Fine-tuning on long documents, the loop written once for every task (:mod:`.tasks`).

Built on ``transformers``' ``Trainer`` (its ``Seq2SeqTrainer`` and sentence-transformers' trainer for the
tasks that need them), so mixed precision, gradient accumulation and checkpointing, checkpoints with resume,
early stopping and multi-GPU (``torchrun`` / ``accelerate launch``) come from there. Every input is checked
before training starts; the model is scored on the evaluation data before and after training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..core.loading import load_config
from ..core.locations import resolve_source
from ..fast import backend_name
from ..io.output import write_text_atomically
from ..targets import prepare_attention
from .cards import finetuning_card
from .documents import read_documents
from .options import FinetuneOptions
from .setup import check_output, resume_point
from .tasks import Data, choose_task


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
    """Fine-tune the model in ``model_location`` for ``options.task``; write ``output_dir/final`` (the model and
    its card), ``eval_results.json`` and, with a test set, ``predictions.jsonl`` (and ``test_results.json``
    when it has the answers)."""
    sources = [s for s in (train_source, eval_source, test_source) if s]
    output_dir = check_output(output_dir, resume=options.resume, keep=[model_location, *sources])
    location = resolve_source(model_location)
    config = load_config(location, allow_pickle=allow_pickle)
    data = read_data(train_source, eval_source, test_source, options)
    data.allow_pickle = allow_pickle
    task = choose_task(options.task, config, data, options)
    options = task.with_defaults(options)
    job = task.prepare(location, config, data, options)
    prepare_attention(job.backbone, fast_attention)
    trainer = task.trainer(job, output_dir, options)
    resume_from = resume_point(output_dir, options.max_steps or math.inf) if options.resume else None
    before = task.evaluate(trainer, job) if options.evaluate_before and not resume_from else None
    result = trainer.train(resume_from_checkpoint=resume_from)
    task.after_training(trainer, job)
    summary: dict[str, Any] = {
        "task": task.name,
        "steps": result.global_step,
        "train_loss": result.training_loss,
        "max_length": job.length,
        "train_documents": len(data.train),
        "eval_documents": len(data.eval),
        "eval_before_training": before,
        "eval": task.evaluate(trainer, job),
        "attention": backend_name(job.backbone),
        "resumed_from": resume_from,
        "notes": job.notes,
        "final": str(output_dir / "final"),
        **task.summary(job, options),
    }
    if job.test is not None:
        summary["test"] = task.predict(trainer, job, output_dir)
    _write_results(task, trainer, job, data, summary, options, model_location)
    return summary


def read_data(train: str, eval: str, test: str | None, options: FinetuneOptions) -> Data:  # noqa: A002
    """Every split with all its fields (``--task auto`` decides from the training data's fields)."""

    def read(source: str, split: str):
        return read_documents(source, what=f"--{split}", text_field=options.text_field, every_field=True, split=split)

    return Data(train, eval, test, read(train, "train"), read(eval, "eval"), read(test, "test") if test else None)


def _write_results(task, trainer, job, data: Data, summary: dict, options: FinetuneOptions, source: str) -> None:
    """``final/`` (the model as the task saves it, and its card) moved into place whole; ``eval_results.json``."""
    final = Path(summary["final"])

    def card(directory: Path) -> None:
        text = finetuning_card(
            job.backbone, summary, task=task, source_name=source, data=data.named(), options=task.settings(options),
            described=task.described(job),
        )  # fmt: skip
        (directory / "README.md").write_text(text, encoding="utf-8")

    task.save(trainer, job, final, summary, options, card)
    if not trainer.is_world_process_zero():
        return
    before = summary["eval_before_training"]
    recorded = {**summary["eval"], **({"before_training": before} if before else {})}
    write_text_atomically(final.parent / "eval_results.json", json.dumps(recorded, indent=2) + "\n")
