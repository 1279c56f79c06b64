"""``pretrain`` and ``evaluate``: from a converted model to a useful one, measured."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConversionError
from .common import (
    Command,
    Option,
    allow_pickle_option,
    check_writable,
    exit_codes,
    fast_attention_option,
    json_option,
    precision_option,
    quiet_transformers,
    seed_option,
    text_field_option,
)


@click.command(cls=Command, short_help="Continue masked-LM pretraining on long documents.")
@click.argument(
    "model",
    required=False,
    help="A masked-LM model directory (e.g. written by convert), or builtin:NAME. Omit with --from-config.",
)
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("out/pretrain"),
    help="Directory for checkpoints, metrics.csv and the final model (final/).",
)
@click.option(
    "--data",
    multiple=True,
    help="Text files, JSON Lines files or directories of them (repeat), or a datasets name when online.",
)
@click.option(
    "--from-config",
    type=click.Path(path_type=Path),
    default=None,
    help="Train a fresh model from this config.json (or its directory) instead of MODEL.",
)
@click.option(
    "--tokenizer",
    type=click.Path(path_type=Path),
    default=None,
    help="Tokenizer directory (default: the model's, or --from-config's).",
)
@click.option(
    "--sinusoidal-positions", is_flag=True, help="With --from-config: start the position rows as scaled sinusoids."
)
@click.option("--max-steps", type=click.IntRange(min=1), default=1000, help="Optimizer steps.")
@click.option("--batch-size", type=click.IntRange(min=1), default=8, help="Blocks per device per step.")
@click.option(
    "--gradient-accumulation-steps",
    type=click.IntRange(min=1),
    default=1,
    help="Steps to accumulate before each update.",
)
@click.option("--learning-rate", type=click.FloatRange(min=0), default=3e-5, help="Peak learning rate.")
@click.option(
    "--schedule",
    default="constant_with_warmup",
    help="transformers lr schedule: constant_with_warmup, linear, cosine, ...",
)
@click.option(
    "--warmup-ratio", type=click.FloatRange(0, 1), default=0.05, help="Fraction of the steps spent warming up."
)
@click.option(
    "--max-length",
    type=click.IntRange(min=3),
    default=None,
    cls=Option,
    default_text="the model's length",
    help="Block length.",
)
@click.option(
    "--held-out",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.05,
    help="Fraction of the documents held out for evaluation.",
)
@click.option("--eval-steps", type=click.IntRange(min=1), default=100, help="Evaluate every N steps.")
@click.option(
    "--save-steps",
    type=click.IntRange(min=1),
    default=100,
    help="Checkpoint every N steps (a killed run resumes from the last).",
)
@click.option("--logging-steps", type=click.IntRange(min=1), default=10, help="Log (metrics.csv) every N steps.")
@click.option("--gradient-checkpointing", is_flag=True, help="Recompute activations to save memory.")
@precision_option
@click.option(
    "--global-cls",
    is_flag=True,
    help="Longformer: global attention on each block's first token (trains the global projections).",
)
@click.option(
    "--only-positions-beyond",
    type=int,
    default=None,
    help="Train only the position rows past this many tokens (the paper's ablation).",
)
@text_field_option
@click.option("--tensorboard", is_flag=True, help="Also log to TensorBoard (needs tensorboard installed).")
@click.option("--resume", is_flag=True, help="Continue the run in OUTPUT from its last checkpoint.")
@seed_option("Seed for the split, the masks and the data order.")
@allow_pickle_option("Allow loading pickle weights (.bin), which can run code: only for checkpoints you trust.")
@fast_attention_option
def pretrain(
    model: str | None,
    output: Path,
    data: tuple[str, ...],
    from_config: Path | None,
    tokenizer: Path | None,
    sinusoidal_positions: bool,
    max_steps: int,
    batch_size: int,
    gradient_accumulation_steps: int,
    learning_rate: float,
    schedule: str,
    warmup_ratio: float,
    max_length: int | None,
    held_out: float,
    eval_steps: int,
    save_steps: int,
    logging_steps: int,
    gradient_checkpointing: bool,
    precision: str,
    global_cls: bool,
    only_positions_beyond: int | None,
    text_field: str,
    tensorboard: bool,
    resume: bool,
    seed: int,
    allow_pickle: bool,
    fast_attention: bool,
) -> None:
    """Continue masked-LM pretraining of MODEL on long documents (the Trainer; multi-GPU via torchrun/accelerate).

    Example: roberta2longformer pretrain out/model-long --data novels/ --max-steps 2000 -o out/model-long-pt
    """
    from ..fast import enable_if
    from ..train.pretraining import PretrainOptions, load_for_pretraining
    from ..train.pretraining import pretrain as run_pretrain

    quiet_transformers()
    with exit_codes():
        if (model is None) == (from_config is None):
            raise ConversionError("Give either MODEL or --from-config (not both, not neither).")
        options = PretrainOptions(
            max_steps=max_steps,
            batch_size=batch_size,
            gradient_accumulation_steps=gradient_accumulation_steps,
            learning_rate=learning_rate,
            schedule=schedule,
            warmup_ratio=warmup_ratio,
            held_out=held_out,
            eval_steps=eval_steps,
            save_steps=save_steps,
            logging_steps=logging_steps,
            gradient_checkpointing=gradient_checkpointing,
            precision=precision,
            seed=seed,
            max_length=max_length,
            text_field=text_field,
            global_cls=global_cls,
            only_positions_beyond=only_positions_beyond,
            resume=resume,
            report_to=["tensorboard"] if tensorboard else [],
        )
        _check_schedule(schedule)
        model_obj, tokenizer_obj = load_for_pretraining(
            model,
            from_config,
            tokenizer,
            sinusoidal_positions=sinusoidal_positions,
            seed=seed,
            allow_pickle=allow_pickle,
        )
        enable_if(model_obj, fast_attention)
        summary = run_pretrain(model_obj, tokenizer_obj, list(data), output, options, source_name=model or "")
    for line in summary_lines(summary):
        click.echo(line)


def _check_schedule(schedule: str) -> None:
    from transformers import SchedulerType

    names = [kind.value for kind in SchedulerType]
    if schedule not in names:
        raise ConversionError(f"Unknown --schedule {schedule!r}; choose one of {', '.join(names)}.")


def summary_lines(summary: dict) -> list[str]:
    """What a pretraining run did and scored, in words."""
    resumed = f", resumed from {summary['resumed_from']}" if summary["resumed_from"] else ""
    lines = [
        f"Trained {summary['steps']} steps on {summary['train_blocks']} blocks of {summary['block_length']} tokens{resumed}.",
        f"  training loss {summary['train_loss']:.4f}",
    ]
    if "eval_loss" in summary:
        bpc = f", {summary['eval_bpc']:.4f} bits per character" if "eval_bpc" in summary else ""
        lines.append(f"  held-out loss {summary['eval_loss']:.4f} on {summary['eval_blocks']} blocks{bpc}")
    if summary["global_projections_recopied"]:
        lines.append(
            f"  global projections copied again from the trained local ones in {summary['global_projections_recopied']} layers"
        )
    return [
        *lines,
        f"Wrote {summary['final']} (model, tokenizer, README.md); the training log is in metrics.csv beside it.",
    ]


@click.command(cls=Command, short_help="Masked-LM loss and bits per character on held-out documents.")
@click.argument(
    "models",
    nargs=-1,
    required=True,
    help="Masked-LM model directories (or builtin:NAME) to compare; each reads the documents in windows "
    "of its own length.",
)
@click.option(
    "--data", multiple=True, required=True, help="Held-out documents: text files, JSON Lines or directories (repeat)."
)
@seed_option("Seed of the masks (the same masks for every model sharing a tokenizer).")
@click.option(
    "--window",
    type=click.IntRange(min=3),
    default=None,
    cls=Option,
    default_text="each model's length",
    help="Read in windows of this many tokens.",
)
@click.option("--batch-size", type=click.IntRange(min=1), default=4, help="Windows per forward pass.")
@click.option(
    "--max-documents",
    type=click.IntRange(min=1),
    default=None,
    cls=Option,
    default_text="all",
    help="Evaluate only the first N documents.",
)
@text_field_option
@json_option("Also write the results as JSON here.")
@allow_pickle_option("Allow loading pickle weights (.bin), which can run code: only for checkpoints you trust.")
@fast_attention_option
def evaluate(
    models: tuple[str, ...],
    data: tuple[str, ...],
    seed: int,
    window: int | None,
    batch_size: int,
    max_documents: int | None,
    text_field: str,
    json_path: Path | None,
    allow_pickle: bool,
    fast_attention: bool,
) -> None:
    """Masked-LM loss and bits per character of one or more models on held-out long documents.

    Example: roberta2longformer evaluate builtin:austen-roberta out/austen-long --data persuasion.txt
    """
    import json

    from ..fast import enable_if
    from ..train.data import load_documents
    from ..train.evaluation import evaluate as run_evaluate
    from ..train.evaluation import format_table
    from ..train.pretraining import load_for_pretraining

    quiet_transformers()
    with exit_codes():
        check_writable(json_path)  # before the work, not after it
        texts = list(load_documents(list(data), text_field=text_field)["text"])[: max_documents or None]
        results = []
        for name in models:
            model, tokenizer = load_for_pretraining(name, None, None, allow_pickle=allow_pickle)
            enable_if(model, fast_attention)  # not the short source beside its long model
            results.append(
                run_evaluate(model, tokenizer, texts, seed=seed, window=window, batch_size=batch_size, name=name)
            )
        click.echo(format_table(results))
        if json_path is not None:
            json_path.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n", encoding="utf-8")
