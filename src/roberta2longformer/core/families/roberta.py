"""RoBERTa and the families laid out like it: XLM-RoBERTa, CamemBERT, and Longformer (RoBERTa with global
projections, which converts only to an encoder-decoder: a Longformer's length is changed by ``resize``)."""

from __future__ import annotations

from ..keys import kept
from ..positions import roberta_position_offset
from .base import SourceFamily

ROBERTA_HEADS = {
    "masked_lm": kept("lm_head"),
    "sequence_classification": kept("classifier"),  # dense + out_proj, as in Longformer
    "token_classification": kept("classifier"),
    "question_answering": kept("qa_outputs"),
    "multiple_choice": kept("classifier"),
}


def roberta_family(name: str, *model_types: str, prefix: str = "roberta", **extra) -> SourceFamily:
    """A family with RoBERTa's keys, heads and positions (numbered from ``pad_token_id + 1``)."""
    return SourceFamily(
        name=name,
        model_types=model_types,
        prefix=prefix,
        position_offset=lambda config: roberta_position_offset(config.pad_token_id),
        head_rules=ROBERTA_HEADS,
        **extra,
    )


ROBERTA = roberta_family("RoBERTa", "roberta")
XLM_ROBERTA = roberta_family("XLM-RoBERTa", "xlm-roberta")
CAMEMBERT = roberta_family("CamemBERT", "camembert")
# A Longformer (ours or a public one) is RoBERTa plus global q/k/v, which stay canonical
# (``base.encoder.layer.N.attention.self.query_global.…``) for the targets that have them.
LONGFORMER = roberta_family(
    "Longformer",
    "longformer",
    prefix="longformer",
    converts_to=lambda target: target.is_encoder_decoder,
    global_projections=True,
    targets_hint="to change a Longformer's length, resize it (roberta2longformer resize).",
)
