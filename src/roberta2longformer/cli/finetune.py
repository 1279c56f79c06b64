"""``finetune``: a long model trained for the task it was converted for, with the baselines beside it."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    Command,
    Option,
    allow_pickle_option,
    exit_codes,
    fast_attention_option,
    precision_option,
    quiet_transformers,
    seed_option,
)

DATA_HELP = (
    "a JSON Lines / CSV file, or NAME[:SPLIT] of a datasets dataset (--task embedding: documents as text files, "
    "JSON Lines files or directories of them)"
)


@click.command(cls=Command, short_help="Fine-tune for document classification or summarization.")
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
    type=click.Choice(("auto", "classification", "multi-label", "summarization", "embedding")),
    default="auto",
    help="auto: summarization for an encoder-decoder with a summary field; multi-label when labels are lists. "
    "embedding: a sentence-transformers model, trained to find the document a passage came from.",
)
@click.option("--text-field", default="text", help="The document field.")
@click.option("--label-field", default="label", help="Classification: the label field (a list for multi-label).")
@click.option("--summary-field", default="summary", help="Summarization: the reference summary field.")
@click.option(
    "--max-length",
    type=click.IntRange(min=2),
    default=None,
    cls=Option,
    default_text="the model's length",
    help="Tokens read per document; longer ones are cut to it, and the count is said.",
)
@click.option(
    "--truncate",
    type=click.IntRange(min=2),
    default=None,
    help="Baseline: read only the first N tokens of each document (e.g. a short model's 512).",
)
@click.option(
    "--chunks",
    type=click.Choice(("mean",)),
    default=None,
    help="Baseline: read every window of the model's length and average the windows' predictions.",
)
@click.option(
    "--epochs", type=click.FloatRange(min=0, min_open=True), default=3.0, help="Passes over the training data."
)
@click.option(
    "--max-steps",
    type=click.IntRange(min=1),
    default=None,
    cls=Option,
    default_text="--epochs",
    help="Optimizer steps.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Documents per device per step.")
@click.option(
    "--gradient-accumulation-steps", type=click.IntRange(min=1), default=1, help="Steps to accumulate per update."
)
@click.option("--learning-rate", type=click.FloatRange(min=0), default=3e-5, help="Peak learning rate (linear decay).")
@click.option("--warmup-ratio", type=click.FloatRange(0, 1), default=0.1, help="Fraction of the steps warming up.")
@click.option(
    "--early-stopping",
    type=click.IntRange(min=0),
    default=3,
    help="Stop after N evaluations without improving macro-F1 (ROUGE-L); 0: never. The best one is kept.",
)
@click.option("--gradient-checkpointing", is_flag=True, help="Recompute activations to save memory.")
@precision_option
@click.option("--max-summary-length", type=click.IntRange(min=1), default=128, help="Summarization: tokens generated.")
@click.option("--num-beams", type=click.IntRange(min=1), default=1, help="Summarization: beams while generating.")
@click.option(
    "--only-positions-beyond",
    type=click.IntRange(min=0),
    default=None,
    help="Embedding: train only the position rows of tokens at index ≥ N (e.g. the source's 256), so inputs of up "
    "to N tokens embed exactly as before (verify proves it).",
)
@click.option("--passage-words", type=click.IntRange(min=1), default=48, help="Embedding: words per training passage.")
@click.option(
    "--mini-batch-size",
    type=click.IntRange(min=1),
    default=None,
    help="Embedding: compute each batch's loss N texts at a time (GradCache: same gradients, memory for N).",
)
@click.option(
    "--attention-dropout",
    type=click.FloatRange(0, 1),
    default=None,
    cls=Option,
    default_text="the model's",
    help="Embedding: attention dropout while training (0 trains several times faster on CPU).",
)
@click.option(
    "--passages-per-document",
    type=click.IntRange(min=1),
    default=1,
    help="Embedding: (passage, document) pairs drawn from each training document per epoch.",
)
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT from its last checkpoint.")
@seed_option("Seed for the head, the data order and dropout.")
@allow_pickle_option("Allow loading pickle weights (.bin), which can run code: only for checkpoints you trust.")
@fast_attention_option
def finetune(
    model: str,
    train_data: str,
    eval_data: str,
    test_data: str | None,
    output: Path,
    task: str,
    text_field: str,
    label_field: str,
    summary_field: str,
    max_length: int | None,
    truncate: int | None,
    chunks: str | None,
    epochs: float,
    max_steps: int | None,
    batch_size: int,
    gradient_accumulation_steps: int,
    learning_rate: float,
    warmup_ratio: float,
    early_stopping: int,
    gradient_checkpointing: bool,
    precision: str,
    max_summary_length: int,
    num_beams: int,
    only_positions_beyond: int | None,
    passage_words: int,
    mini_batch_size: int | None,
    attention_dropout: float | None,
    passages_per_document: int,
    resume: bool,
    seed: int,
    allow_pickle: bool,
    fast_attention: bool,
) -> None:
    """Fine-tune MODEL on long documents: classification (labels read from the data) or, for LED and other
    encoder-decoders, summarization; the Trainer, so multi-GPU runs start with torchrun / accelerate launch.

    Example: roberta2longformer finetune out/model-long --train train.jsonl --eval dev.jsonl -o out/classifier

    With --task embedding, MODEL is a sentence-transformers model (e.g. converted from one), --train and --eval
    are documents, and sentence-transformers' trainer learns to find the document a passage came from.
    """
    if task == "embedding":
        return _finetune_embeddings(click.get_current_context().params)
    embedding_only = {
        "--only-positions-beyond": only_positions_beyond is not None,
        "--mini-batch-size": mini_batch_size is not None,
        "--attention-dropout": attention_dropout is not None,
    }
    given = [flag for flag, used in embedding_only.items() if used]
    if given:
        raise click.UsageError(f"{given[0]} applies to --task embedding.")
    from ..train.finetuning import REPORTED_METRICS, FinetuneOptions
    from ..train.finetuning import finetune as run_finetune

    quiet_transformers()
    options = FinetuneOptions(
        task=task,
        text_field=text_field,
        label_field=label_field,
        summary_field=summary_field,
        max_length=max_length,
        truncate=truncate,
        chunks=chunks,
        epochs=epochs,
        max_steps=max_steps,
        batch_size=batch_size,
        gradient_accumulation_steps=gradient_accumulation_steps,
        learning_rate=learning_rate,
        warmup_ratio=warmup_ratio,
        early_stopping_patience=early_stopping or None,
        gradient_checkpointing=gradient_checkpointing,
        precision=precision,
        max_summary_length=max_summary_length,
        num_beams=num_beams,
        seed=seed,
        resume=resume,
    )
    with exit_codes():
        summary = run_finetune(
            model,
            train_data,
            eval_data,
            test_data,
            output,
            options,
            fast_attention=fast_attention,
            allow_pickle=allow_pickle,
        )
    for note in summary["notes"]:
        click.secho(f"Note: {note}", fg="yellow", err=True)
    resumed = f", resumed from {summary['resumed_from']}" if summary["resumed_from"] else ""
    click.echo(f"Fine-tuned for {summary['task']}: {summary['steps']} steps, reading {summary['reading']}{resumed}.")
    for split, label in (("eval_before_training", "eval before training"), ("eval", "eval"), ("test", "test")):
        if summary.get(split):
            shown = ", ".join(f"{k} {v:.4f}" for k, v in summary[split].items() if k in REPORTED_METRICS)
            click.echo(f"  {label}: {shown}")
    click.echo(f"Wrote {summary['final']} (model, tokenizer, README.md) and {output}/eval_results.json.")


def _finetune_embeddings(given: dict) -> None:
    """``--task embedding``: the options of the command that apply to it (same names as EmbeddingOptions')."""
    from dataclasses import fields

    from ..train.embedding_finetuning import EmbeddingOptions, finetune_embeddings

    unused = {"--test": given["test_data"], "--truncate": given["truncate"], "--chunks": given["chunks"],
              "--resume": given["resume"]}  # fmt: skip
    for flag, value in unused.items():
        if value:
            raise click.UsageError(
                f"{flag} does not apply to --task embedding; compare with the source with evaluate-embeddings."
            )
    quiet_transformers()
    options = EmbeddingOptions(**{f.name: given[f.name] for f in fields(EmbeddingOptions) if f.name in given})
    model, output = given["model"], given["output"]
    with exit_codes():
        summary = finetune_embeddings(
            model, [given["train_data"]], [given["eval_data"]], output, options, fast_attention=given["fast_attention"]
        )
    click.echo(
        f"Fine-tuned for embedding: {summary['steps']} steps on {summary['pairs']} (passage, document) pairs, "
        f"training {summary['trained']}, reading up to {summary['training_length']} tokens of each document."
    )
    for split, label in (("eval_before_training", "eval before training"), ("eval", "eval")):
        if summary[split]:
            click.echo(f"  {label}: " + ", ".join(f"{k} {v:.4f}" for k, v in summary[split].items()))
    click.echo(f"Wrote {summary['final']} (sentence-transformers model, training.json) and {output}/eval_results.json.")
