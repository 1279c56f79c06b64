"""Position tables: where the learned rows sit, and how to give a model more (or fewer) of them.

RoBERTa-style models (RoBERTa, XLM-R, CamemBERT, Longformer) do not number tokens from 0. They
compute ``position = cumsum(not padding) + pad_token_id``, so the first real token reads row
``pad_token_id + 1`` (row 2 for RoBERTa) and every padding token reads row ``pad_token_id``. The
rows below that offset are therefore not positions at all: row ``pad_token_id`` is the padding
row and the rest are never read. A 512-token RoBERTa has a 514-row table for this reason.
BERT-style models number tokens from 0, so their offset is 0.

Converting between the two conventions means moving the *learned* rows (those read by real
tokens) so that token ``i`` reads the same vector before and after, and treating the offset rows
separately. That is what this module does; it is the one place that knows about offsets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ..errors import ConversionError

if TYPE_CHECKING:
    import torch

PositionInit = Literal["tile", "tile-trained", "interpolate", "random", "random-all"]
POSITION_INITS: tuple[str, ...] = ("tile", "tile-trained", "interpolate", "random", "random-all")


def check_position_init(init: str) -> None:
    if init not in POSITION_INITS:
        raise ConversionError(f"Unknown --position-init {init!r}; choose one of {', '.join(POSITION_INITS)}.")


def roberta_position_offset(pad_token_id: int | None) -> int:
    """Number of rows before the first learned row in a RoBERTa-style table (2 for RoBERTa)."""
    if pad_token_id is None:
        raise ConversionError(
            "The model config has no pad_token_id, which RoBERTa-style position ids are computed "
            "from; set pad_token_id in the source config."
        )
    return pad_token_id + 1


def extend_learned_rows(
    learned: torch.Tensor,
    length: int,
    init: PositionInit = "tile",
    *,
    std: float = 0.02,
    generator: torch.Generator | None = None,
    trained: int | None = None,
) -> torch.Tensor:
    """Return ``length`` position rows that start with the source's learned rows.

    The first ``min(length, len(learned))`` rows are the source rows unchanged, so a converted
    model computes exactly what its source did on inputs the source could read. Rows beyond the
    source's length are filled according to ``init``:

    - ``tile``: repeat the learned rows (the Longformer paper's "copy" initialisation);
    - ``interpolate``: one copy of the learned table, linearly stretched over the new rows
      (smooth between neighbours instead of repeating with a period);
    - ``random``: drawn from ``normal(0, std)``, the usual fresh init (for ablations);
    - ``tile-trained``: repeat only the first ``trained`` rows, for models trained on fewer tokens
      than their table holds (an embedder used at 256 of its 512 positions): the rows it never
      read are replaced too, so it is exact on inputs of up to ``trained`` tokens.

    A ``length`` below the source length keeps the first ``length`` rows. ``random-all`` is the
    Longformer paper's "random" ablation: *every* row drawn fresh, the source's too, so the model
    no longer reproduces its source (``verify`` fails by design); it exists to measure that.
    """
    import torch  # not at import: the command line reads the targets before it needs torch

    _check_request(init, length)
    rows = torch.empty(length, learned.shape[1], dtype=learned.dtype)
    _fill_rows(rows, learned, init, std=std, generator=generator, trained=trained)
    return rows


def _check_request(init: str, length: int) -> None:
    check_position_init(init)
    if length <= 0:
        raise ConversionError(f"The position table needs a positive length, got {length}.")


def _fill_rows(
    rows: torch.Tensor,
    learned: torch.Tensor,
    init: PositionInit,
    *,
    std: float,
    generator: torch.Generator | None,
    trained: int | None = None,
) -> None:
    """Write :func:`extend_learned_rows`' result into ``rows`` (preallocated: the tables are large,
    and building them by concatenation costs a fresh allocation, and its page faults, per step)."""
    import torch  # not at import: the command line reads the targets before it needs torch

    length, source_length = rows.shape[0], learned.shape[0]
    if init == "random-all":
        rows.copy_(torch.empty(length, learned.shape[1], dtype=torch.float32).normal_(0.0, std, generator=generator))
        return
    if init == "tile-trained":
        learned, source_length = learned[: trained or source_length], min(trained or source_length, source_length)
        init = "tile"
    kept = min(length, source_length)
    rows[:kept] = learned[:kept]
    if length <= source_length:
        return
    if init == "tile":
        for start in range(source_length, length, source_length):
            stop = min(start + source_length, length)
            rows[start:stop] = learned[: stop - start]
    elif init == "interpolate":
        rows[source_length:] = _stretch(learned, length - source_length)
    else:
        rows[source_length:] = torch.empty(length - source_length, learned.shape[1], dtype=torch.float32).normal_(
            0.0, std, generator=generator
        )


def _stretch(rows: torch.Tensor, count: int) -> torch.Tensor:
    """Sample ``count`` rows evenly across ``rows`` by linear interpolation (endpoints included)."""
    import torch  # not at import: the command line reads the targets before it needs torch

    source = rows.float()
    if source.shape[0] == 1 or count == 1:
        return source[:1].repeat(count, 1)
    where = torch.linspace(0, source.shape[0] - 1, count, dtype=torch.float64)
    below = where.floor().long().clamp(max=source.shape[0] - 2)
    weight = (where - below).unsqueeze(1).float()
    return source[below] * (1 - weight) + source[below + 1] * weight


def rebuild_position_table(
    table: torch.Tensor,
    *,
    source_offset: int,
    target_offset: int,
    max_length: int,
    init: PositionInit = "tile",
    std: float = 0.02,
    generator: torch.Generator | None = None,
    trained: int | None = None,
) -> torch.Tensor:
    """Build a target position table of ``target_offset + max_length`` rows from a source table.

    The learned rows (``table[source_offset:]``) are moved so that token ``i`` reads the same vector
    in the target as in the source, and extended with :func:`extend_learned_rows`. The offset rows
    are kept as they are when both conventions agree (RoBERTa → Longformer); when the source has
    no offset rows (BERT), the target's are zero, like a freshly initialised padding row.
    """
    learned = table[source_offset:]
    if learned.shape[0] == 0:
        raise ConversionError(
            f"The source position table has {table.shape[0]} rows, none of them learned; "
            "the checkpoint or its max_position_embeddings is wrong."
        )
    import torch  # not at import: the command line reads the targets before it needs torch

    _check_request(init, max_length)
    rebuilt = torch.empty(target_offset + max_length, table.shape[1], dtype=table.dtype)
    if target_offset == source_offset:
        rebuilt[:target_offset] = table[:source_offset]
    elif target_offset < source_offset:
        rebuilt[:target_offset] = table[source_offset - target_offset : source_offset]
    else:
        rebuilt[:target_offset] = 0
    if trained is not None and not 0 < trained <= learned.shape[0]:
        raise ConversionError(
            f"--trained-positions must be between 1 and the source's {learned.shape[0]} position rows, got {trained}."
        )
    _fill_rows(rebuilt[target_offset:], learned, init, std=std, generator=generator, trained=trained)
    return rebuilt
