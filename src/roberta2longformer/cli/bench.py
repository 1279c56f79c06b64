"""``bench``: startup, conversion, inference and training measured side by side, with tables and plots."""

from __future__ import annotations

from pathlib import Path

import click

from ..bench.models import ARCHITECTURES, SHAPES
from ..bench.run import PARTS, run_bench
from ..bench.speed import TRAINING_CASES
from ..errors import ConversionError
from .common import Command, Option, check_inputs, exit_codes, int_list, name_list

DEVICES = ("auto", "cpu", "cuda")


def cuda_available() -> bool:
    import torch  # only to ask for the GPU, when one is asked for

    return torch.cuda.is_available()


@click.command(cls=Command, short_help="Measure startup, conversion, inference and training, with plots.")
@click.option("--what", default="conversion,inference,training", help=f"Comma-separated, from: {', '.join(PARTS)}.")
@click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("out/benchmarks"),
    help="Directory for results.md, results.json and the PNG plots.",
)
@click.option(
    "--full",
    is_flag=True,
    help="The full sweep: roberta-base shape for inference and training, lengths up to 16384 (slow on a CPU).",
)
@click.option(
    "--shapes",
    default="base,large",
    help=f"Startup and conversion: source shapes, from {', '.join(SHAPES)} (startup uses the first).",
)
@click.option(
    "--max-length", type=click.IntRange(min=2), default=4096, help="Startup and conversion: the target length."
)
@click.option(
    "--repeats", type=click.IntRange(min=1), default=3, help="Timed repetitions per case (the median is reported)."
)
@click.option(
    "--lengths",
    default=None,
    cls=Option,
    default_text="512..4096, with --full ..16384",
    help="Inference: sequence lengths.",
)
@click.option("--batches", default="1,4", help="Inference: batch sizes.")
@click.option(
    "--model-shape",
    type=click.Choice(tuple(SHAPES)),
    default=None,
    cls=Option,
    default_text="small, with --full base",
    help="Inference and training: the model shape.",
)
@click.option("--training-length", type=click.IntRange(min=2), default=4096, help="Training: tokens per sequence.")
@click.option("--device", type=click.Choice(DEVICES), default="auto", help="auto: a GPU if there is one.")
@click.option(
    "--fast-attention/--no-fast-attention",
    default=True,
    help="Also measure the models that have it with roberta2longformer.fast, and its floor (no attention products).",
)
@click.option("--archs", default=",".join(ARCHITECTURES), help="Inference and training: the models to measure.")
@click.option(
    "--training-cases",
    default=",".join(TRAINING_CASES),
    help="Training: mlm, mlm-checkpointing (gradient checkpointing), encoder (the encoder alone).",
)
def bench(
    what: str,
    output: Path,
    full: bool,
    shapes: str,
    max_length: int,
    repeats: int,
    lengths: str | None,
    batches: str,
    model_shape: str | None,
    training_length: int,
    device: str,
    fast_attention: bool,
    archs: str,
    training_cases: str,
) -> None:
    """Measure startup, conversion, inference and training side by side with their baselines; write tables and plots.

    Example: roberta2longformer bench --what conversion --shapes base
    """
    with exit_codes():
        parts = name_list(what, PARTS, "benchmark(s)")
        shape_names = name_list(shapes, tuple(SHAPES), "shape(s)")
        chosen = name_list(archs, ARCHITECTURES, "model(s) for --archs")
        steps = name_list(training_cases, tuple(TRAINING_CASES), "--training-cases")
        check_inputs(runs=[output], resume=True)  # an existing directory gets new sections; a file is refused
        if device == "cuda" and not cuda_available():
            raise ConversionError(
                "--device cuda: this machine has no CUDA GPU that torch can use; leave --device out (or auto)."
            )
        default_lengths = "512,1024,2048,4096,8192,16384" if full else "512,1024,2048,4096"
        run_bench(
            parts,
            output,
            shapes=shape_names,
            max_length=max_length,
            repeats=repeats,
            lengths=int_list(lengths or default_lengths, "--lengths"),
            batches=int_list(batches, "--batches"),
            model_shape=model_shape or ("base" if full else "small"),
            training_length=training_length,
            device=device,
            fast=fast_attention,
            archs=chosen,
            training_cases=steps,
            log=click.echo,
        )
