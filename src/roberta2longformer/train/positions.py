"""Training only the position rows past the source's length (the Longformer paper's "extra position
embeddings only" ablation; LongEmbed's recipe for embedders): everything else stays bit for bit what it
was, so inputs of up to N tokens compute exactly as before, which ``verify`` then proves."""

from __future__ import annotations

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
