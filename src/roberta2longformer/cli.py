"""The ``roberta2longformer`` command line: convert and verify."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from .errors import ConversionError, ToleranceError

app = typer.Typer(
    help=(
        "Turn a pretrained RoBERTa-family encoder (RoBERTa, XLM-R, CamemBERT, BERT) into a "
        "long-context model that loads with plain transformers classes, and prove it exact."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


class Target(str, Enum):
    longformer = "longformer"
    nystromformer = "nystromformer"
    bigbird = "bigbird"
    led = "led"


class CrossAttentionInit(str, Enum):
    random = "random"
    self = "self"


class PositionInit(str, Enum):
    tile = "tile"
    interpolate = "interpolate"
    random = "random"


class DType(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


def _fail(error: Exception, code: int) -> None:
    typer.secho(f"Error: {error}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def _exit_codes() -> Iterator[None]:
    """Bad input exits 2, a model that differs from its source exits 1; each with one sentence."""
    try:
        yield
    except ConversionError as error:
        _fail(error, 2)
    except ToleranceError as error:
        _fail(error, 1)


_TEXTS_OPTION = typer.Option(
    "--texts", help="A file of real inputs in the source's domain, one per line (default: English and German sentences)."
)


def _read_texts(path: Path | None) -> list[str] | None:
    if path is None:
        return None
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as error:
        raise ConversionError(f"Could not read --texts {path} ({error}); give a UTF-8 text file, one input per line.") from None
    if not lines:
        raise ConversionError(f"--texts {path} has no non-empty lines; give one input per line.")
    return lines


def _quiet_transformers() -> None:
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()


@app.command()
def convert(
    source: Annotated[str, typer.Argument(help="Source model: a directory written by save_pretrained, a fairseq RoBERTa .pt (with dict.txt; needs --allow-pickle), a hub id (online only) or builtin:all-MiniLM-L6-v2.")],
    output: Annotated[Path, typer.Argument(help="Directory to create for the converted model, tokenizer and report.")],
    to: Annotated[Target, typer.Option(help="Target architecture.")] = Target.longformer,
    max_length: Annotated[int, typer.Option(help="Longest input the new model reads, in tokens.")] = 4096,
    attention_window: Annotated[Optional[int], typer.Option(help="Longformer/LED: tokens each token attends to (even; half on each side). Default 512.")] = None,
    num_landmarks: Annotated[Optional[int], typer.Option(help="Nyströmformer: landmarks per layer. Default 64.")] = None,
    segment_length: Annotated[Optional[int], typer.Option(help="Nyströmformer: the input length the model reads (segment_means_seq_len; inputs must be padded to it). Default: --max-length.")] = None,
    conv_kernel_size: Annotated[Optional[int], typer.Option(help="Nyströmformer: kernel of the value convolution, which starts at zero. Default 65.")] = None,
    block_size: Annotated[Optional[int], typer.Option(help="BigBird: tokens per attention block (--max-length must be a multiple). Default 64.")] = None,
    num_random_blocks: Annotated[Optional[int], typer.Option(help="BigBird: random blocks each block attends to. Default 3.")] = None,
    decoder_max_length: Annotated[Optional[int], typer.Option(help="LED: longest output the decoder reads, in tokens. Default 1024.")] = None,
    cross_attention_init: Annotated[Optional[CrossAttentionInit], typer.Option(help="LED: start the decoder's cross-attention random or as a copy of its self-attention. Default random.")] = None,
    position_init: Annotated[PositionInit, typer.Option(help="How to fill position rows beyond the source's: tile (repeat, as in the Longformer paper), interpolate, random. The source's rows are always kept.")] = PositionInit.tile,
    dtype: Annotated[Optional[DType], typer.Option(help="Cast the weights; default: keep the source's dtype.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists (only once the new one is complete).")] = False,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow loading pickle weights (.bin/.pt), which can run code: only for checkpoints you trust.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Compare the result with the source before writing it (recommended).")] = True,
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="During verification, also run one forward pass at the full max length.")] = True,
    seed: Annotated[int, typer.Option(help="Seed for random position rows and verification inputs.")] = 0,
    texts: Annotated[Optional[Path], _TEXTS_OPTION] = None,
    max_shard_size: Annotated[str, typer.Option(help="Write the weights as shards of at most this size (e.g. 500MB, 5GB), with an index.")] = "5GB",
    in_memory: Annotated[bool, typer.Option("--in-memory", help="Load the source and build the target in memory instead of streaming tensor by tensor (the only way for pickle, fairseq and hub sources, which use it automatically).")] = False,
) -> None:
    """Convert SOURCE to a long model in OUTPUT, verify it, and write a report and model card.

    A directory of safetensors weights is converted by streaming: one tensor at a time is read,
    mapped and written, so memory stays near one tensor and time near one copy of the checkpoint.

    Example: roberta2longformer convert builtin:all-MiniLM-L6-v2 out/minilm-4096 --max-length 4096
    """
    from .convert import convert as run_convert
    from .output import check_output_dir
    from .streaming import NotStreamable, convert_checkpoint, is_streamable

    _quiet_transformers()
    with _exit_codes():
        check_output_dir(output, force=force)
        options = {
            name: value
            for name, value in {
                "attention_window": attention_window,
                "num_landmarks": num_landmarks,
                "segment_means_seq_len": segment_length,
                "conv_kernel_size": conv_kernel_size,
                "block_size": block_size,
                "num_random_blocks": num_random_blocks,
                "decoder_max_length": decoder_max_length,
                "cross_attention_init": cross_attention_init.value if cross_attention_init else None,
            }.items()
            if value is not None
        }
        common = dict(
            to=to.value, max_length=max_length, dtype=dtype.value if dtype else None, seed=seed,
            position_init=position_init.value, **options,
        )
        written = None
        if not in_memory and is_streamable(source):
            with contextlib.suppress(NotStreamable):  # then convert in memory, below
                written = convert_checkpoint(
                    source, output, force=force, verify=verify, smoke=smoke, texts=_read_texts(texts),
                    max_shard_size=max_shard_size, on_report=_print_report, **common,
                )
        if written is not None:
            for note in written.notes:
                typer.secho(f"Note: {note}", fg=typer.colors.YELLOW, err=True)
            checked = f"; verified in {written.verify_seconds:.1f} s" if verify else " (not verified)"
            typer.echo(
                f"Converted {type(written.conversion.source_model).__name__} → {type(written.conversion.model).__name__} "
                f"({max_length} tokens) by streaming in {written.seconds:.1f} s{checked}"
            )
            typer.echo(f"Wrote {output} (model, tokenizer, verification.json, README.md)")
            return
        conversion = run_convert(source, allow_pickle=allow_pickle, **common)
        for note in conversion.notes:
            typer.secho(f"Note: {note}", fg=typer.colors.YELLOW, err=True)
        typer.echo(f"Converted {type(conversion.source_model).__name__} → {type(conversion.model).__name__} "
                   f"({max_length} tokens) in {conversion.seconds:.1f} s")
        _verify_and_save(conversion, output, verify=verify, smoke=smoke, seed=seed, force=force, name=source,
                         texts=_read_texts(texts))


@app.command()
def resize(
    model: Annotated[str, typer.Argument(help="A long model's directory (Longformer, BigBird, Nyströmformer or LED), e.g. one written by convert.")],
    output: Annotated[Path, typer.Argument(help="Directory to create for the resized model, tokenizer and report.")],
    max_length: Annotated[int, typer.Option(help="The new longest input, in tokens (larger or smaller than now).")],
    position_init: Annotated[PositionInit, typer.Option(help="How to fill new position rows; existing rows are always kept.")] = PositionInit.tile,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists (only once the new one is complete).")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Compare the result with the original on inputs both can read (recommended).")] = True,
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="During verification, also run one forward pass at the new length.")] = True,
    seed: Annotated[int, typer.Option(help="Seed for random position rows and verification inputs.")] = 0,
) -> None:
    """Grow or shrink MODEL's position table to --max-length tokens, keep every other weight, verify.

    Example: roberta2longformer resize out/minilm-longformer-4096 out/minilm-longformer-8192 --max-length 8192
    """
    from .output import check_output_dir
    from .resize import resize as run_resize

    _quiet_transformers()
    with _exit_codes():
        check_output_dir(output, force=force)
        resized = run_resize(model, max_length=max_length, position_init=position_init.value, seed=seed)
        typer.echo(
            f"Resized {type(resized.model).__name__} from {resized.options['resized_from']} to {max_length} tokens "
            f"in {resized.seconds:.1f} s"
        )
        _verify_and_save(resized, output, verify=verify, smoke=smoke, seed=seed, force=force, name=model)


def _verify_and_save(
    conversion, output: Path, *, verify: bool, smoke: bool, seed: int, force: bool, name: str, texts=None
) -> None:
    """Verify before writing anything (exit 1, nothing written, when the result differs), then save."""
    from .output import save_conversion
    from .verify import verify as run_verify

    report = None
    if verify:
        report = run_verify(
            conversion.source_model, conversion.model, conversion.source_tokenizer,
            smoke=smoke, seed=seed, raise_on_failure=False, source_name=name, texts=texts,
        )
        _print_report(report)
        if not report.passed:
            raise ToleranceError(report.failures())
    save_conversion(conversion, report, output, force=force)
    typer.echo(f"Wrote {output} (model, tokenizer, verification.json, README.md)")


@app.command("import-fairseq")
def import_fairseq(
    checkpoint: Annotated[Path, typer.Argument(help="A fairseq RoBERTa checkpoint (.pt), with its dict.txt beside it.")],
    output: Annotated[Path, typer.Argument(help="Directory to create for the RobertaForMaskedLM and its tokenizer.")],
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Required: fairseq checkpoints are pickles (only tensors and settings are read; nothing in them runs).")] = False,
    dictionary: Annotated[Optional[Path], typer.Option("--dict", help="The dict.txt, if it is not next to the checkpoint.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUTPUT if it exists (only once the new one is complete).")] = False,
) -> None:
    """Write a fairseq RoBERTa checkpoint as a transformers RobertaForMaskedLM + tokenizer (no fairseq needed).

    Example: roberta2longformer import-fairseq gottbert/model.pt out/gottbert --allow-pickle
    """
    from .fairseq import load_fairseq_roberta
    from .output import atomic_output_dir, check_output_dir

    _quiet_transformers()
    with _exit_codes():
        check_output_dir(output, force=force)  # before reading a large checkpoint
        model, tokenizer = load_fairseq_roberta(checkpoint, allow_pickle=allow_pickle, dictionary=dictionary)
        with atomic_output_dir(output, force=force) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
    typer.echo(
        f"Wrote {output}: RobertaForMaskedLM ({model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}, "
        f"{model.config.vocab_size} tokens, {model.config.max_position_embeddings - 2} positions) and its tokenizer"
    )


@app.command()
def pretrain(
    model: Annotated[Optional[str], typer.Argument(help="A masked-LM model directory (e.g. written by convert), or builtin:NAME. Omit with --from-config.")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for checkpoints, metrics.csv and the final model (final/).")] = Path("out/pretrain"),
    data: Annotated[list[str], typer.Option("--data", help="Text files, JSON Lines files or directories of them (repeat), or a datasets name when online.")] = [],  # noqa: B006
    from_config: Annotated[Optional[Path], typer.Option(help="Train a fresh model from this config.json (or its directory) instead of MODEL.")] = None,
    tokenizer: Annotated[Optional[Path], typer.Option(help="Tokenizer directory (default: the model's, or --from-config's).")] = None,
    sinusoidal_positions: Annotated[bool, typer.Option("--sinusoidal-positions", help="With --from-config: start the position rows as scaled sinusoids.")] = False,
    max_steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
    batch_size: Annotated[int, typer.Option(help="Blocks per device per step.")] = 8,
    gradient_accumulation_steps: Annotated[int, typer.Option(help="Steps to accumulate before each update.")] = 1,
    learning_rate: Annotated[float, typer.Option(help="Peak learning rate.")] = 3e-5,
    schedule: Annotated[str, typer.Option(help="transformers lr schedule: constant_with_warmup, linear, cosine, …")] = "constant_with_warmup",
    warmup_ratio: Annotated[float, typer.Option(help="Fraction of the steps spent warming up.")] = 0.05,
    max_length: Annotated[Optional[int], typer.Option(help="Block length (default: the model's length).")] = None,
    held_out: Annotated[float, typer.Option(help="Fraction of the documents held out for evaluation.")] = 0.05,
    eval_steps: Annotated[int, typer.Option(help="Evaluate every N steps.")] = 100,
    save_steps: Annotated[int, typer.Option(help="Checkpoint every N steps (a killed run resumes from the last).")] = 100,
    logging_steps: Annotated[int, typer.Option(help="Log (metrics.csv) every N steps.")] = 10,
    gradient_checkpointing: Annotated[bool, typer.Option("--gradient-checkpointing", help="Recompute activations to save memory.")] = False,
    precision: Annotated[str, typer.Option(help="auto (bf16/fp16 on a GPU that has it), fp32, bf16, fp16.")] = "auto",
    global_cls: Annotated[bool, typer.Option("--global-cls", help="Longformer: global attention on each block's first token (trains the global projections).")] = False,
    only_positions_beyond: Annotated[Optional[int], typer.Option(help="Train only the position rows past this many tokens (the paper's ablation).")] = None,
    text_field: Annotated[str, typer.Option(help="The text field of JSON Lines data.")] = "text",
    tensorboard: Annotated[bool, typer.Option("--tensorboard", help="Also log to TensorBoard (needs tensorboard installed).")] = False,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the run in OUTPUT from its last checkpoint.")] = False,
    seed: Annotated[int, typer.Option(help="Seed for the split, the masks and the data order.")] = 0,
    fast_attention: Annotated[bool, typer.Option("--fast-attention", help="Longformer/LED: compute attention with roberta2longformer.fast (same results, less time and memory).")] = False,
) -> None:
    """Continue masked-LM pretraining of MODEL on long documents (the Trainer; multi-GPU via torchrun/accelerate).

    Example: roberta2longformer pretrain out/model-long --data novels/ --max-steps 2000 -o out/model-long-pt
    """
    from .pretraining import PretrainOptions, load_for_pretraining
    from .pretraining import pretrain as run_pretrain

    _quiet_transformers()
    with _exit_codes():
        if (model is None) == (from_config is None):
            raise ConversionError("Give either MODEL or --from-config (not both, not neither).")
        options = PretrainOptions(
            max_steps=max_steps, batch_size=batch_size, gradient_accumulation_steps=gradient_accumulation_steps,
            learning_rate=learning_rate, schedule=schedule, warmup_ratio=warmup_ratio, held_out=held_out,
            eval_steps=eval_steps, save_steps=save_steps, logging_steps=logging_steps,
            gradient_checkpointing=gradient_checkpointing, precision=precision, seed=seed, max_length=max_length,
            text_field=text_field, global_cls=global_cls, only_positions_beyond=only_positions_beyond,
            resume=resume, report_to=["tensorboard"] if tensorboard else [],
        )
        model_obj, tokenizer_obj = load_for_pretraining(
            model, from_config, tokenizer, sinusoidal_positions=sinusoidal_positions, seed=seed
        )
        _fast_if(fast_attention, model_obj)
        summary = run_pretrain(model_obj, tokenizer_obj, list(data), output, options)
    for key, value in summary.items():
        typer.echo(f"{key}: {value}")


@app.command()
def evaluate(
    models: Annotated[list[str], typer.Argument(help="Masked-LM model directories (or builtin:NAME) to compare; each reads the documents in windows of its own length.")],
    data: Annotated[list[str], typer.Option("--data", help="Held-out documents: text files, JSON Lines or directories (repeat).")],
    seed: Annotated[int, typer.Option(help="Seed of the masks (the same masks for every model sharing a tokenizer).")] = 0,
    window: Annotated[Optional[int], typer.Option(help="Read in windows of this many tokens instead of each model's length.")] = None,
    batch_size: Annotated[int, typer.Option(help="Windows per forward pass.")] = 4,
    max_documents: Annotated[Optional[int], typer.Option(help="Evaluate only the first N documents.")] = None,
    text_field: Annotated[str, typer.Option(help="The text field of JSON Lines data.")] = "text",
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON here.")] = None,
    fast_attention: Annotated[bool, typer.Option("--fast-attention", help="Longformer/LED: compute attention with roberta2longformer.fast (same results, less time and memory).")] = False,
) -> None:
    """Masked-LM loss and bits per character of one or more models on held-out long documents.

    Example: roberta2longformer evaluate builtin:austen-roberta out/austen-long --data persuasion.txt
    """
    import json

    from .data import load_documents
    from .evaluation import evaluate as run_evaluate
    from .evaluation import format_table
    from .pretraining import load_for_pretraining

    _quiet_transformers()
    with _exit_codes():
        texts = list(load_documents(data, text_field=text_field)["text"])[: max_documents or None]
        results = []
        for name in models:
            model, tokenizer = load_for_pretraining(name, None, None)
            _fast_if(fast_attention, model, only_if_applicable=True)  # e.g. the short source beside its long model
            results.append(run_evaluate(model, tokenizer, texts, seed=seed, window=window, batch_size=batch_size, name=name))
        typer.echo(format_table(results))
        if json_path is not None:
            json_path.write_text(json.dumps([r.to_dict() for r in results], indent=2) + "\n", encoding="utf-8")


@app.command()
def verify(
    source: Annotated[str, typer.Argument(help="The model that was converted (directory, hub id or builtin:NAME).")],
    converted: Annotated[str, typer.Argument(help="The converted model's directory.")],
    smoke: Annotated[bool, typer.Option("--smoke/--no-smoke", help="Also run one forward pass at the full max length.")] = True,
    json_path: Annotated[Optional[Path], typer.Option("--json", help="Also write the report as JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the verification inputs.")] = 0,
    allow_pickle: Annotated[bool, typer.Option("--allow-pickle", help="Allow loading pickle weights of the source (or a fairseq .pt).")] = False,
    texts: Annotated[Optional[Path], _TEXTS_OPTION] = None,
    fast_attention: Annotated[bool, typer.Option("--fast-attention", help="Longformer/LED: compute attention with roberta2longformer.fast (same results, less time and memory).")] = False,
) -> None:
    """Check that CONVERTED computes what SOURCE computes wherever its attention is exact.

    That is one Longformer window, BigBird's full-attention lengths, or Nyströmformer's
    exact-softmax regime; approximations are measured and reported, not checked.

    Exits 0 when every check passes, 1 when one fails, 2 on bad input.
    """
    from .fairseq import is_fairseq_checkpoint, load_fairseq_roberta
    from .loading import load_model, load_tokenizer
    from .verify import verify as run_verify

    _quiet_transformers()
    with _exit_codes():
        if is_fairseq_checkpoint(source):
            source_model, tokenizer = load_fairseq_roberta(source, allow_pickle=allow_pickle)
        else:
            source_model, tokenizer = load_model(source, allow_pickle=allow_pickle), load_tokenizer(source)
        converted_model = _fast_if(fast_attention, load_model(converted))
        report = run_verify(source_model, converted_model, tokenizer, smoke=smoke, seed=seed,
                            raise_on_failure=False, source_name=source, texts=_read_texts(texts))
        _print_report(report)
        if json_path is not None:
            json_path.write_text(report.to_json() + "\n", encoding="utf-8")
        if not report.passed:
            raise ToleranceError(report.failures())
    typer.echo(f"Verified: max |diff| {report.max_abs_diff:.2e} on inputs up to {report.exact_length} tokens.")


def _fast_if(wanted: bool, model, *, only_if_applicable: bool = False):
    """Switch ``model`` to the fast attention backend when asked (a clear error if it has no Longformer layers)."""
    from . import fast

    if wanted and not (only_if_applicable and not fast.applies_to(model)):
        fast.enable(model)
    return model


def _int_list(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v <= 0 for v in values):
        raise ConversionError(f"{what} must be positive integers separated by commas (e.g. 512,1024), got {text!r}.")
    return values


@app.command()
def bench(
    what: Annotated[str, typer.Option(help="Comma-separated: conversion, inference, training.")] = "conversion,inference,training",
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory for results.md, results.json and the PNG plots.")] = Path("docs/benchmarks"),
    full: Annotated[bool, typer.Option("--full", help="The full sweep: roberta-base shape for inference and training, lengths up to 16384 (slow on a CPU).")] = False,
    shapes: Annotated[str, typer.Option(help="Conversion: source shapes (small, base, large).")] = "base,large",
    max_length: Annotated[int, typer.Option(help="Conversion: the target length.")] = 4096,
    repeats: Annotated[int, typer.Option(help="Timed repetitions per case (the median is reported).")] = 3,
    lengths: Annotated[Optional[str], typer.Option(help="Inference: sequence lengths (default 512..4096, --full: ..16384).")] = None,
    batches: Annotated[str, typer.Option(help="Inference: batch sizes.")] = "1,4",
    model_shape: Annotated[Optional[str], typer.Option("--model-shape", help="Inference/training shape (default small; --full: base).")] = None,
    training_length: Annotated[int, typer.Option(help="Training: tokens per sequence.")] = 4096,
    device: Annotated[str, typer.Option(help="auto (a GPU if there is one), cpu or cuda.")] = "auto",
    fast_attention: Annotated[bool, typer.Option("--fast-attention/--no-fast-attention", help="Also measure the Longformer with roberta2longformer.fast enabled, and its floor (no attention products).")] = True,
    archs: Annotated[str, typer.Option(help="Inference/training: models to measure (full-sdpa, longformer, bigbird, nystromformer).")] = "full-sdpa,longformer,bigbird,nystromformer",
    training_cases: Annotated[str, typer.Option(help="Training: mlm, mlm-checkpointing (gradient checkpointing), encoder (the encoder alone).")] = "mlm,mlm-checkpointing,encoder",
) -> None:
    """Measure conversion, inference and training side by side with their baselines; write tables and plots.

    Example: roberta2longformer bench --what conversion --shapes base
    """
    from .benchmark import run_bench

    with _exit_codes():
        parts = [p.strip() for p in what.split(",") if p.strip()]
        unknown = sorted(set(parts) - {"conversion", "inference", "training"})
        if unknown or not parts:
            raise ConversionError(f"Unknown benchmark(s) {', '.join(unknown) or what!r}; choose from conversion, inference, training.")
        wrong_shapes = [s for s in [*shapes.split(","), model_shape or "small"] if s not in ("small", "base", "large")]
        if wrong_shapes:
            raise ConversionError(f"Unknown shape(s) {', '.join(wrong_shapes)}; choose small, base or large.")
        chosen = [a.strip() for a in archs.split(",") if a.strip()]
        wrong = sorted(set(chosen) - {"full-sdpa", "longformer", "bigbird", "nystromformer"})
        if wrong or not chosen:
            raise ConversionError(f"Unknown model(s) {', '.join(wrong) or archs!r} for --archs; choose from full-sdpa, longformer, bigbird, nystromformer.")
        steps = [c.strip() for c in training_cases.split(",") if c.strip()]
        if not steps or set(steps) - {"mlm", "mlm-checkpointing", "encoder"}:
            raise ConversionError(f"Unknown --training-cases {training_cases!r}; choose from mlm, mlm-checkpointing, encoder.")
        if device not in ("auto", "cpu", "cuda"):
            raise ConversionError(f"Unknown device {device!r}; choose auto, cpu or cuda.")
        default_lengths = "512,1024,2048,4096,8192,16384" if full else "512,1024,2048,4096"
        run_bench(
            parts, output, shapes=shapes.split(","), max_length=max_length, repeats=repeats,
            lengths=_int_list(lengths or default_lengths, "--lengths"), batches=_int_list(batches, "--batches"),
            model_shape=model_shape or ("base" if full else "small"), training_length=training_length,
            device=device, fast=fast_attention, archs=chosen, training_cases=steps, log=typer.echo,
        )


def _print_report(report) -> None:
    for line in report.summary_lines():
        typer.echo(line)


def main() -> None:  # pragma: no cover - console entry point
    logging.basicConfig(level=logging.WARNING)
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
