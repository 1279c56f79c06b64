"""``pretrain`` and ``evaluate``: from a converted model to a useful one, measured."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ConversionError
from ..train.options import PretrainOptions
from .common import (
    Command,
    Option,
    allow_pickle_option,
    check_inputs,
    exit_codes,
    fast_attention_option,
    json_option,
    note_idle_fast_attention,
    quiet_transformers,
    require_module,
    seed_option,
    text_field_option,
)
from .settings import settings_from, settings_options


@settings_options(PretrainOptions, group="Training")
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
    help="Text, Markdown, JSON Lines, JSON or CSV files or directories of them (repeat), or a datasets name when online.",
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
@click.option("--tensorboard", is_flag=True, help="Also log to TensorBoard (needs tensorboard installed).")
@allow_pickle_option("Allow loading pickle weights (.bin), which can run code: only for checkpoints you trust.")
@fast_attention_option
def pretrain(model: str | None, output: Path, data: tuple[str, ...], **given) -> None:
    """Continue masked-LM pretraining of MODEL on long documents (the Trainer; multi-GPU via torchrun/accelerate).

    Example: roberta2longformer pretrain out/model-long --data novels/ --max-steps 2000 -o out/model-long-pt
    """
    with exit_codes():
        if (model is None) == (given["from_config"] is None):
            raise ConversionError("Give either MODEL or --from-config (not both, not neither).")
        check_inputs(
            sources=[model] if model else [], runs=[output], resume=given["resume"], data={"--data": data},
            paths={"--from-config": given["from_config"], "--tokenizer": given["tokenizer"]},
        )  # fmt: skip
        options = settings_from(PretrainOptions, given, report_to=["tensorboard"] if given["tensorboard"] else [])
        if given["tensorboard"]:
            require_module("tensorboard", "--tensorboard")
        from ..targets import prepare_attention
        from ..train.pretraining import load_for_pretraining
        from ..train.pretraining import pretrain as run_pretrain

        quiet_transformers()
        _check_schedule(options.schedule)
        if model:
            note_idle_fast_attention([model])
        model_obj, tokenizer_obj = load_for_pretraining(
            model, given["from_config"], given["tokenizer"], sinusoidal_positions=given["sinusoidal_positions"],
            seed=options.seed, allow_pickle=given["allow_pickle"],
        )  # fmt: skip
        prepare_attention(model_obj, given["fast_attention"])
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
    with exit_codes():
        check_inputs(sources=models, data={"--data": data}, reports={"--json": json_path})
        import json

        from ..io.output import write_text_atomically
        from ..targets import prepare_attention
        from ..train.documents import read_documents
        from ..train.evaluation import evaluate as run_evaluate
        from ..train.evaluation import format_table
        from ..train.pretraining import load_for_pretraining

        quiet_transformers()
        note_idle_fast_attention(models)
        texts = list(read_documents(list(data), text_field=text_field)["text"])[: max_documents or None]
        results = []
        for name in models:
            model, tokenizer = load_for_pretraining(name, None, None, allow_pickle=allow_pickle)
            prepare_attention(model, fast_attention)  # not the short source beside its long model
            results.append(
                run_evaluate(model, tokenizer, texts, seed=seed, window=window, batch_size=batch_size, name=name)
            )
        click.echo(format_table(results))
        if json_path is not None:
            write_text_atomically(json_path, json.dumps([r.to_dict() for r in results], indent=2) + "\n")
