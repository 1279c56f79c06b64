"""Training only the position rows past the source's length (the Longformer paper's "extra position
embeddings only" ablation; LongEmbed's recipe for embedders): everything else stays bit for bit what it
was, so inputs of up to N tokens compute exactly as before, which ``verify`` then proves."""

from __future__ import annotations

import inspect
from typing import Any

import torch
from transformers import PreTrainedModel

from ..errors import ConversionError
from ..targets import position_table


def freeze_all_but_positions(model: PreTrainedModel, beyond: int) -> int:
    """Train only the position rows read by tokens at index ≥ ``beyond``; returns the frozen rows' count
    (offset rows included)."""
    name, offset = position_table(model)
    table = model.get_parameter(name)
    if beyond < 0:
        raise ConversionError(f"--only-positions-beyond must be a number of tokens (0 or more), got {beyond}.")
    if not offset + beyond < table.shape[0]:
        raise ConversionError(
            f"--only-positions-beyond {beyond} leaves no rows to train (the model has {table.shape[0] - offset} positions)."
        )
    for parameter in model.parameters():
        parameter.requires_grad_(parameter is table)
    keep = torch.zeros(table.shape[0], 1, dtype=table.dtype)
    keep[offset + beyond :] = 1
    table.register_hook(lambda grad: grad * keep.to(grad.device, grad.dtype))
    return offset + beyond


def check_untouched(model: PreTrainedModel, before: dict[str, torch.Tensor], rows: int) -> None:
    """Everything but the trained position rows (those from ``rows`` on) is what it was, bit for bit
    (AdamW without weight decay leaves a parameter whose gradient is always zero exactly where it was)."""
    name, _ = position_table(model)

    def same(key: str, tensor: torch.Tensor) -> bool:
        if key == name:
            return torch.equal(tensor[:rows], before[key][:rows])
        return torch.equal(tensor, before[key])

    changed = [key for key, tensor in model.state_dict().items() if not same(key, tensor)]
    if changed:
        raise ConversionError(
            f"Training positions only changed {len(changed)} other tensor(s) ({', '.join(changed[:3])}); "
            "this is a bug, please report it."
        )


def shift_positions_while_training(model: PreTrainedModel, shortest: int, seed: int) -> Any:
    """While ``model`` trains, give each input of at least ``shortest`` tokens PoSE's skipped position ids (Zhu et
    al., 2023; LongEmbed trained E5-Base-4k so): the first ``k`` tokens keep positions ``0…k-1``, the rest are moved
    on by a random skip, so that short documents read every position up to the model's length — the position rows
    past a short source's length are trained without long documents, and distances inside each part stay what
    they are. ``k`` and the skip are drawn per batch (seeded). Shorter inputs (the query passages) and evaluation
    read their positions as they would at use. Returns the hook's handle (``.remove()`` ends it)."""
    name, offset = position_table(model)
    longest = model.get_parameter(name).shape[0] - offset
    generator = torch.Generator().manual_seed(seed)
    # On the embeddings, not the model: sentence-transformers calls the model's forward method directly (no hooks
    # run there), and the model calls its embeddings module with keywords.
    embeddings = model.get_submodule(name.rsplit(".", 2)[0])
    if "position_ids" not in inspect.signature(embeddings.forward).parameters:
        raise ConversionError(
            f"--shift-positions needs embeddings that take position ids, and {type(model).__name__}'s compute their "
            "own; train without it (on long documents)."
        )

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        if not module.training or ids is None or kwargs.get("position_ids") is not None:
            return None
        length = ids.shape[-1]
        if length < shortest or length >= longest:
            return None
        kept = int(torch.randint(1, length, (1,), generator=generator))
        skip = int(torch.randint(0, longest - length + 1, (1,), generator=generator))
        positions = torch.arange(length) + offset
        positions[kept:] += skip
        kwargs["position_ids"] = positions.to(ids.device).expand(ids.shape)
        return args, kwargs

    return embeddings.register_forward_pre_hook(hook, with_kwargs=True)
