"""``convert``, ``verify``, ``resize`` and ``import-fairseq``: making long models and proving them.

``convert``'s target options are built from the registry: one option per distinct target option,
listed under the targets that take it, so a new target's options appear here by themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..errors import ToleranceError
from ..targets import DEFAULT_TARGET, DTYPE_NAMES, POSITION_INIT, TRAINED_POSITIONS, Target, all_targets, target_names
from .common import (
    Command,
    Option,
    allow_pickle_option,
    check_writable,
    exit_codes,
    fast_attention_option,
    force_option,
    given,
    json_option,
    print_report,
    quiet_transformers,
    read_texts,
    seed_option,
    short_lived,
    texts_option,
)

SOURCE_HELP = (
    "A directory written by save_pretrained, a fairseq RoBERTa .pt (with dict.txt; needs --allow-pickle), "
    "builtin:austen-roberta or builtin:all-MiniLM-L6-v2, or a hub id (online only)."
)


def _target_option_params() -> list[click.Option]:
    """One click option per target option, under a heading naming the targets that take it."""
    takers: dict[str, list[Target]] = {}
    declared: dict[str, Any] = {}
    for target in all_targets():
        for option in target.options:
            takers.setdefault(option.name, []).append(target)
            declared.setdefault(option.name, option)
    params = []
    for name, option in declared.items():
        targets = takers[name]
        heading = f"{' and '.join(t.title for t in targets)} options (--to {' or '.join(t.name for t in targets)})"
        params.append(
            Option(
                [f"--{option.cli_name}", name],
                type=click.Choice(option.choices) if option.choices else option.type,
                default=option.default,
                help=option.help,
                group=heading,
                default_text=option.default_text if option.default is None else None,
            )
        )
    return params


def _add_params(params: list[click.Parameter]):
    def decorate(command: click.Command) -> click.Command:
        command.params.extend(params)
        return command

    return decorate


@_add_params(_target_option_params())
@click.command(cls=Command, short_help="Convert a model to a long one, verify it, write it with a report.")
@click.argument("source", help=f"The model to convert: {SOURCE_HELP}")
@click.argument(
    "output",
    type=click.Path(path_type=Path),
    help="Directory to create for the converted model, tokenizer, report and model card.",
)
@click.option("--to", type=click.Choice(target_names()), default=DEFAULT_TARGET, help="Target architecture.")
@click.option("--max-length", type=int, default=4096, help="Longest input the new model reads, in tokens.")
@click.option(
    "--position-init",
    cls=Option,
    type=click.Choice(POSITION_INIT.choices),
    default=POSITION_INIT.default,
    help=POSITION_INIT.help,
)
@click.option(
    "--trained-positions",
    cls=Option,
    type=click.IntRange(min=1),
    default=None,
    default_text=TRAINED_POSITIONS.default_text,
    help=TRAINED_POSITIONS.help,
)
@click.option(
    "--dtype",
    type=click.Choice(DTYPE_NAMES),
    default=None,
    cls=Option,
    default_text="the source's",
    help="Cast the weights.",
)
@force_option
@allow_pickle_option("Allow loading pickle weights (.bin/.pt), which can run code: only for checkpoints you trust.")
@click.option("--verify/--no-verify", default=True, help="Compare the result with the source before writing it.")
@click.option(
    "--smoke/--no-smoke", default=True, help="During verification, also run one forward pass at the full max length."
)
@seed_option("Seed for random position rows and verification inputs.")
@texts_option
@click.option(
    "--max-shard-size", default="5GB", help="Write the weights as shards of at most this size, with an index."
)
@fast_attention_option
@click.option(
    "--in-memory",
    is_flag=True,
    help="Load the source and build the target in memory instead of streaming tensor by tensor "
    "(pickle, fairseq and hub sources always are).",
)
@short_lived
def convert(
    source: str,
    output: Path,
    to: str,
    max_length: int,
    position_init: str,
    trained_positions: int | None,
    dtype: str | None,
    force: bool,
    allow_pickle: bool,
    verify: bool,
    smoke: bool,
    seed: int,
    texts: Path | None,
    max_shard_size: str,
    fast_attention: bool,
    in_memory: bool,
    **target_options: Any,
) -> None:
    """Convert SOURCE to a long model in OUTPUT, verify it, and write a report and model card.

    A directory of safetensors weights is converted by streaming: tensors are copied from file to
    file, so memory stays near two tensors and time near one copy of the checkpoint.

    Example: roberta2longformer convert builtin:all-MiniLM-L6-v2 out/minilm-4096 --max-length 4096
    """
    from ..core.streaming import NotStreamable, convert_checkpoint, is_streamable
    from ..io.output import check_output_dir

    quiet_transformers()
    with exit_codes():
        from ..core.loading import resolve_source

        check_output_dir(output, force=force, keep=[resolve_source(source)])
        ctx = click.get_current_context()
        options = {name: value for name, value in target_options.items() if given(ctx, name)}  # the rest: defaults
        common = dict(to=to, max_length=max_length, dtype=dtype, seed=seed, position_init=position_init, **options)
        if trained_positions is not None:
            common["trained_positions"] = trained_positions
        if not in_memory and is_streamable(source):
            try:
                written = convert_checkpoint(
                    source,
                    output,
                    force=force,
                    verify=verify,
                    smoke=smoke,
                    texts=read_texts(texts),
                    max_shard_size=max_shard_size,
                    fast_attention=fast_attention,
                    on_report=print_report,
                    **common,
                )
            except NotStreamable:
                pass  # converted in memory, below
            else:
                for note in written.notes:
                    click.secho(f"Note: {note}", fg="yellow", err=True)
                checked = f"; verified in {written.verify_seconds:.1f} s" if written.report is not None else ""
                click.echo(
                    f"Converted {written.conversion.source_class} → {written.conversion.model_class} "
                    f"({max_length} tokens) by streaming in {written.seconds:.1f} s{checked}"
                )
                click.echo(f"Wrote {output} (model, tokenizer, verification.json, README.md)")
                return
        from ..core.convert import convert as run_convert

        conversion = run_convert(source, allow_pickle=allow_pickle, **common)
        for note in conversion.notes:
            click.secho(f"Note: {note}", fg="yellow", err=True)
        click.echo(
            f"Converted {conversion.source_class} → {conversion.model_class} "
            f"({max_length} tokens) in {conversion.seconds:.1f} s"
        )
        _verify_and_save(
            conversion,
            output,
            verify=verify,
            smoke=smoke,
            seed=seed,
            force=force,
            name=source,
            texts=read_texts(texts),
            max_shard_size=max_shard_size,
            fast_attention=fast_attention,
        )


@click.command(cls=Command, short_help="Grow or shrink a long model's position table, and verify it.")
@click.argument(
    "model", help="A long model's directory (Longformer, BigBird, Nyströmformer or LED), e.g. one written by convert."
)
@click.argument(
    "output", type=click.Path(path_type=Path), help="Directory to create for the resized model, tokenizer and report."
)
@click.option("--max-length", type=int, required=True, help="The new longest input, in tokens (larger or smaller).")
@click.option(
    "--position-init",
    cls=Option,
    type=click.Choice(POSITION_INIT.choices),
    default=POSITION_INIT.default,
    help="How to fill new position rows; existing rows are always kept.",
)
@force_option
@click.option("--verify/--no-verify", default=True, help="Compare the result with the original on inputs both read.")
@click.option(
    "--smoke/--no-smoke", default=True, help="During verification, also run one forward pass at the new length."
)
@seed_option("Seed for random position rows and verification inputs.")
@fast_attention_option
@short_lived
def resize(
    model: str,
    output: Path,
    max_length: int,
    position_init: str,
    force: bool,
    verify: bool,
    smoke: bool,
    seed: int,
    fast_attention: bool,
) -> None:
    """Grow or shrink MODEL's position table to --max-length tokens, keep every other weight, verify.

    Example: roberta2longformer resize out/minilm-longformer-4096 out/minilm-longformer-8192 --max-length 8192
    """
    from ..core.resize import resize as run_resize
    from ..io.output import check_output_dir

    quiet_transformers()
    with exit_codes():
        check_output_dir(output, force=force, keep=[model])
        resized = run_resize(model, max_length=max_length, position_init=position_init, seed=seed)
        click.echo(
            f"Resized {type(resized.model).__name__} from {resized.options['resized_from']} to {max_length} tokens "
            f"in {resized.seconds:.1f} s"
        )
        _verify_and_save(
            resized,
            output,
            verify=verify,
            smoke=smoke,
            seed=seed,
            force=force,
            name=model,
            fast_attention=fast_attention,
        )


def _verify_and_save(
    conversion: Any,
    output: Path,
    *,
    verify: bool,
    smoke: bool,
    seed: int,
    force: bool,
    name: str,
    texts: list[str] | None = None,
    max_shard_size: str = "5GB",
    fast_attention: bool = True,
) -> None:
    """Verify before writing anything (exit 1, nothing written, when the result differs), then save."""
    from ..io.output import save_conversion
    from ..verification import verify as run_verify

    report = None
    if verify:
        report = run_verify(
            conversion.source_model,
            conversion.model,
            conversion.source_tokenizer,
            smoke=smoke,
            seed=seed,
            raise_on_failure=False,
            source_name=name,
            texts=texts,
            options=conversion.options,
            fast_attention=fast_attention,
        )
        print_report(report)
        if not report.passed:
            raise ToleranceError(report.failures())
    save_conversion(conversion, report, output, force=force, max_shard_size=max_shard_size)
    click.echo(f"Wrote {output} (model, tokenizer, verification.json, README.md)")


@click.command("import-fairseq", cls=Command, short_help="Import a fairseq RoBERTa checkpoint as a transformers model.")
@click.argument(
    "checkpoint",
    type=click.Path(path_type=Path),
    help="A fairseq RoBERTa checkpoint (.pt), with its dict.txt beside it.",
)
@click.argument(
    "output", type=click.Path(path_type=Path), help="Directory to create for the RobertaForMaskedLM and its tokenizer."
)
@allow_pickle_option(
    "Required: fairseq checkpoints are pickles (only tensors and settings are read; nothing in them runs)."
)
@click.option(
    "--dict",
    "dictionary",
    type=click.Path(path_type=Path),
    default=None,
    help="The dict.txt, if it is not next to the checkpoint.",
)
@force_option
@short_lived
def import_fairseq(checkpoint: Path, output: Path, allow_pickle: bool, dictionary: Path | None, force: bool) -> None:
    """Write a fairseq RoBERTa checkpoint as a transformers RobertaForMaskedLM + tokenizer (no fairseq needed).

    Example: roberta2longformer import-fairseq gottbert/model.pt out/gottbert --allow-pickle
    """
    from ..io.card import import_card
    from ..io.fairseq import load_fairseq_roberta
    from ..io.output import atomic_output_dir, check_output_dir

    quiet_transformers()
    with exit_codes():
        keep = [checkpoint, *([dictionary] if dictionary else [])]
        check_output_dir(output, force=force, keep=keep)  # before reading a large checkpoint
        model, tokenizer = load_fairseq_roberta(checkpoint, allow_pickle=allow_pickle, dictionary=dictionary)
        with atomic_output_dir(output, force=force, keep=keep) as staging:
            model.save_pretrained(staging)
            tokenizer.save_pretrained(staging)
            (staging / "README.md").write_text(import_card(model, str(checkpoint)), encoding="utf-8")
    click.echo(
        f"Wrote {output}: RobertaForMaskedLM ({model.config.num_hidden_layers} layers, hidden {model.config.hidden_size}, "
        f"{model.config.vocab_size} tokens, {model.config.max_position_embeddings - 2} positions), its tokenizer and a model card"
    )


@click.command(cls=Command, short_help="Check that a converted model computes what its source computes.")
@click.argument("source", help="The model that was converted (directory, hub id or builtin:NAME).")
@click.argument("converted", help="The converted model's directory.")
@click.option("--smoke/--no-smoke", default=True, help="Also run one forward pass at the full max length.")
@json_option("Also write the report as JSON here.")
@seed_option("Seed for the verification inputs.")
@allow_pickle_option("Allow loading pickle weights of the source (or a fairseq .pt).")
@texts_option
@fast_attention_option
@short_lived
def verify(
    source: str,
    converted: str,
    smoke: bool,
    json_path: Path | None,
    seed: int,
    allow_pickle: bool,
    texts: Path | None,
    fast_attention: bool,
) -> None:
    """Check that CONVERTED computes what SOURCE computes wherever its attention is exact.

    That is one Longformer window, BigBird's full-attention lengths, or Nyströmformer's
    exact-softmax regime; approximations are measured and reported, not checked.

    Exits 0 when every check passes, 1 when one fails, 2 on bad input.
    """
    from ..core.loading import load_model, load_tokenizer
    from ..io.fairseq import is_fairseq_checkpoint, load_fairseq_roberta
    from ..io.output import recorded_options
    from ..verification import verify as run_verify

    quiet_transformers()
    with exit_codes():
        check_writable(json_path)
        if is_fairseq_checkpoint(source):
            source_model, tokenizer = load_fairseq_roberta(source, allow_pickle=allow_pickle)
        else:
            source_model, tokenizer = load_model(source, allow_pickle=allow_pickle), load_tokenizer(source)
        converted_model = load_model(converted)
        inputs = read_texts(texts)
        report = run_verify(
            source_model,
            converted_model,
            tokenizer,
            smoke=smoke,
            seed=seed,
            raise_on_failure=False,
            source_name=source,
            texts=inputs,
            options=recorded_options(converted),
            fast_attention=fast_attention,
        )
        _add_sentence_embedding_checks(report, source, converted, inputs, fast_attention)
        print_report(report)
        if json_path is not None:
            json_path.write_text(report.to_json() + "\n", encoding="utf-8")
        if not report.passed:
            raise ToleranceError(report.failures(), maybe_trained=True)
    click.echo(f"Verified: max |diff| {report.max_abs_diff:.2e} on inputs up to {report.exact_length} tokens.")


def _add_sentence_embedding_checks(report, source: str, converted: str, texts, fast_attention: bool) -> None:
    """Both sentence-transformers models: their sentence embeddings (after pooling and normalisation) too."""
    from ..core.loading import resolve_source
    from ..io.sentence_transformers import is_sentence_transformer

    source_dir = resolve_source(source)
    if not (is_sentence_transformer(source_dir) and is_sentence_transformer(converted)):
        return
    from ..verification.sentence_embeddings import add_sentence_embedding_checks

    add_sentence_embedding_checks(report, source_dir, converted, texts, fast_attention=fast_attention)
