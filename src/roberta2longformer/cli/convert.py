"""``convert``, ``verify``, ``resize`` and ``import-fairseq``: making long models and proving them.

``convert``'s target options are built from the registry: one option per distinct target option,
listed under the targets that take it, so a new target's options appear here by themselves.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..core.vocabulary import DTYPE_NAMES
from ..targets import DEFAULT_TARGET, POSITION_INIT, TRAINED_POSITIONS, Target, all_targets, get_target, target_names
from .common import (
    Command,
    Option,
    allow_pickle_option,
    check_inputs,
    exit_codes,
    fast_attention_option,
    force_option,
    given,
    json_option,
    note_idle_fast_attention,
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
@click.option(
    "--to",
    type=click.Choice(target_names()),
    default=DEFAULT_TARGET,
    help="Target architecture: " + ", ".join(f"{t.name} ({t.title})" for t in all_targets()) + ".",
)
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
    ctx = click.get_current_context()
    options = {name: value for name, value in target_options.items() if given(ctx, name)}  # the rest: defaults
    if trained_positions is not None:
        options["trained_positions"] = trained_positions
    with exit_codes():
        check_inputs(sources=[source], outputs=[output], force=force, files={"--texts": texts})
        from ..pipeline import convert_to_directory

        quiet_transformers()
        note_idle_fast_attention(target=get_target(to))
        written = convert_to_directory(
            source, output, to=to, max_length=max_length, dtype=dtype, seed=seed, position_init=position_init,
            allow_pickle=allow_pickle, in_memory=in_memory, force=force, verify=verify, smoke=smoke,
            texts=read_texts(texts), max_shard_size=max_shard_size, fast_attention=fast_attention,
            on_report=print_report, **options,
        )  # fmt: skip
    for note in written.notes:
        click.secho(f"Note: {note}", fg="yellow", err=True)
    conversion = written.conversion
    how = "by streaming " if written.streamed else ""
    checked = f"; verified in {written.verify_seconds:.1f} s" if written.report is not None else ""
    click.echo(
        f"Converted {conversion.source_class} → {conversion.model_class} ({max_length} tokens) "
        f"{how}in {written.seconds:.1f} s{checked}"
    )
    click.echo(f"Wrote {output} (model, tokenizer, verification.json, README.md)")


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
    with exit_codes():
        check_inputs(sources=[model], outputs=[output], force=force)
        from ..pipeline import resize_to_directory

        quiet_transformers()
        written = resize_to_directory(
            model, output, max_length=max_length, position_init=position_init, seed=seed, force=force,
            verify=verify, smoke=smoke, fast_attention=fast_attention, on_report=print_report,
        )  # fmt: skip
    click.echo(
        f"Resized {written.conversion.model_class} from {written.conversion.options['resized_from']} to {max_length} "
        f"tokens in {written.seconds:.1f} s"
    )
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
    with exit_codes():
        check_inputs(files={"CHECKPOINT": checkpoint, "--dict": dictionary})
        from ..pipeline import import_fairseq as run_import

        quiet_transformers()
        model = run_import(checkpoint, output, allow_pickle=allow_pickle, dictionary=dictionary, force=force)
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
    with exit_codes():
        check_inputs(sources=[source, converted], reports={"--json": json_path}, files={"--texts": texts})
        from ..io.output import write_text_atomically
        from ..pipeline import verify_saved

        quiet_transformers()
        note_idle_fast_attention([converted])
        report = verify_saved(
            source, converted, smoke=smoke, seed=seed, allow_pickle=allow_pickle, texts=read_texts(texts),
            fast_attention=fast_attention,
        )  # fmt: skip
        print_report(report)
        if json_path is not None:
            write_text_atomically(json_path, report.to_json() + "\n")
        report.require_passed(maybe_trained=True)
    click.echo(f"Verified: max |diff| {report.max_abs_diff:.2e} on inputs up to {report.exact_length} tokens.")
