"""Which head a model (or a saved checkpoint) has, from its class name."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConversionError
from .families import FAMILIES
from .vocabulary import HEAD_BY_CLASS_SUFFIX

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig


def head_for(model: torch.nn.Module) -> str:
    """The head kind of a model instance from its class name (``…ForMaskedLM`` → ``masked_lm``)."""
    return head_for_class_name(type(model).__name__)


def saved_class_name(config: PretrainedConfig) -> str:
    """The class a checkpoint was saved from (``architectures[0]``); without one, the family's base model."""
    names = getattr(config, "architectures", None) or ()
    return names[0] if names else "Model"


def head_for_class_name(name: str) -> str:
    """The head kind of a class name (``RobertaForMaskedLM`` → ``masked_lm``; ``BartModel`` → ``seq2seq_base``)."""
    if any(f.is_encoder_decoder and name == f"{f.class_prefix}Model" for f in FAMILIES):
        return "seq2seq_base"
    for suffix, head in HEAD_BY_CLASS_SUFFIX.items():
        if name.endswith(suffix):
            return head
    if "For" not in name:  # a pipeline, tokenizer or config class named in architectures
        raise ConversionError(
            f"config.json names {name} as the model's class (architectures), which is not a model class; "
            "give the config.json that was saved with the model."
        )
    if name.endswith("ForPreTraining"):
        raise ConversionError(
            f"{name} is a pretraining head (ELECTRA's discriminator, or BERT's MLM + next-sentence), which no long "
            "target has; convert its base model (save model.base_model with save_pretrained) or a masked-LM one."
        )
    raise ConversionError(
        f"{name} has a head we cannot carry over; supported are the base model and the "
        f"{', '.join(s for s in HEAD_BY_CLASS_SUFFIX if s != 'Model')} heads."
    )
