"""BERT: positions numbered from 0, BERT-style head names, and a classifier that Longformer's head
reproduces once BERT's pooler becomes its ``dense``."""

from __future__ import annotations

from ..keys import kept, module_renames, rename
from ..vocabulary import BERT_STYLE_LM_HEAD, lm_head_activation
from .base import SourceFamily

BERT = SourceFamily(
    name="BERT",
    model_types=("bert",),
    prefix="bert",
    position_offset=lambda config: 0,  # BERT numbers positions from 0: no padding offset
    lm_head_activation=lm_head_activation,
    head_rules={
        "masked_lm": module_renames(BERT_STYLE_LM_HEAD, reverse=True),
        # BERT classifies pooler(CLS) -> dropout -> linear; Longformer's head is
        # dropout -> dense -> tanh -> dropout -> out_proj on CLS: the same computation when
        # the pooler becomes `dense` and the classifier becomes `out_proj`.
        "sequence_classification": (
            rename(r"bert\.pooler\.dense\.(?P<t>\w+)", r"classifier.dense.\g<t>"),
            rename(r"classifier\.(?P<t>\w+)", r"classifier.out_proj.\g<t>"),
        ),
        "token_classification": kept("classifier"),
        "question_answering": kept("qa_outputs"),
        "multiple_choice": kept("classifier"),
    },
)
