"""``finetune``: a long model trained for the task it was converted for, with the baselines beside it."""

from __future__ import annotations

from pathlib import Path

import click

from ..train.options import FinetuneOptions
from ..train.tasks import task_names, task_options
from .common import (
    Command,
    allow_pickle_option,
    check_inputs,
    exit_codes,
    fast_attention_option,
    note_idle_fast_attention,
    quiet_transformers,
)
from .settings import settings_from, settings_options

DATA_HELP = (
    "a JSON Lines, JSON or CSV file, or NAME[:SPLIT] of a datasets dataset (--task embedding: documents as text, "
    "Markdown or JSON Lines files, or directories of them)"
)


def _task_groups() -> dict[str, str]:
    """Each task-specific option under a heading naming the tasks that read it."""
    return {
        option: f"{' and '.join(tasks)} options (--task {' or '.join(tasks)})"
        for option, tasks in task_options().items()
    }


@settings_options(FinetuneOptions, group="Training", groups=_task_groups())
@click.command(cls=Command, short_help="Fine-tune for classification, summarization or long-document embedding.")
@click.argument("model", help="A model directory (e.g. written by convert or pretrain), or builtin:NAME.")
@click.option("--train", "train_data", required=True, help=f"Training examples: {DATA_HELP}.")
@click.option("--eval", "eval_data", required=True, help=f"Evaluation examples (early stopping, scores): {DATA_HELP}.")
@click.option(
    "--test", "test_data", default=None, help=f"Examples to predict (scored when they have answers): {DATA_HELP}."
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="Directory for checkpoints, eval_results.json, predictions.jsonl and the final model (final/).",
)
@click.option(
    "--task",
    type=click.Choice(("auto", *task_names())),
    default="auto",
    help="auto: summarization for an encoder-decoder with a summary field; multi-label when labels are lists; "
    "classification otherwise. embedding: a sentence-transformers model, trained to find the document a passage "
    "came from.",
)
@allow_pickle_option("Allow loading pickle weights (.bin), which can run code: only for checkpoints you trust.")
@fast_attention_option
def finetune(model: str, train_data: str, eval_data: str, test_data: str | None, output: Path, **given) -> None:
    """Fine-tune MODEL on long documents: classification (labels read from the data), summarization (LED and
    other encoder-decoders) or, for a sentence-transformers model, long-document embedding; the Trainer, so
    multi-GPU runs start with torchrun / accelerate launch.

    Example: roberta2longformer finetune out/model-long --train train.jsonl --eval dev.jsonl -o out/classifier
    """
    with exit_codes():
        sources = {"--train": [train_data], "--eval": [eval_data], **({"--test": [test_data]} if test_data else {})}
        check_inputs(sources=[model], runs=[output], resume=given["resume"], data=sources)
        options = settings_from(FinetuneOptions, given)
        from ..train.finetuning import finetune as run_finetune  # after the cheap checks: seconds to import

        quiet_transformers()
        note_idle_fast_attention([model])
        summary = run_finetune(
            model, train_data, eval_data, test_data, output, options,
            fast_attention=given["fast_attention"], allow_pickle=given["allow_pickle"],
        )  # fmt: skip
    for note in summary["notes"]:
        click.secho(f"Note: {note}", fg="yellow", err=True)
    resumed = f", resumed from {summary['resumed_from']}" if summary["resumed_from"] else ""
    click.echo(f"Fine-tuned for {summary['task']}: {summary['steps']} steps, reading {summary['reading']}{resumed}.")
    for split, label in (("eval_before_training", "eval before training"), ("eval", "eval"), ("test", "test")):
        if summary.get(split):
            click.echo(f"  {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary[split].items() if k != "epoch"))
    click.echo(f"Wrote {summary['final']} (model, tokenizer, README.md) and {output}/eval_results.json.")
