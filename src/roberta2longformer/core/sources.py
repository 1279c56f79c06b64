"""Source families: what we know about each supported encoder, declared as data.

Every family is mapped onto one *canonical* layout, the RoBERTa/Longformer one: backbone keys
under ``base.`` (``base.embeddings.…``, ``base.encoder.layer.N.…``, ``base.pooler.…``) and heads
under their Longformer names (``lm_head.…``, ``classifier.…``, ``qa_outputs.…``). Targets then
map from that one layout, so adding a family or a target is one declaration, not a new script.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ConversionError
from .keys import Rename, rename, rename_keys
from .positions import roberta_position_offset

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

    from ..targets import Target

HEADS: tuple[str, ...] = (
    "base",
    "masked_lm",
    "sequence_classification",
    "token_classification",
    "question_answering",
    "multiple_choice",
)
_HEAD_BY_CLASS_SUFFIX = {
    "Model": "base",
    "ForMaskedLM": "masked_lm",
    "ForSequenceClassification": "sequence_classification",
    "ForTokenClassification": "token_classification",
    "ForQuestionAnswering": "question_answering",
    "ForMultipleChoice": "multiple_choice",
}
HEAD_CLASS_SUFFIX = {head: suffix for suffix, head in _HEAD_BY_CLASS_SUFFIX.items()}

POSITION_KEY = "base.embeddings.position_embeddings.weight"

#: Canonical (RoBERTa/Longformer) masked-LM head modules → their BERT-style names, which BERT,
#: Nyströmformer and BigBird share.
BERT_STYLE_LM_HEAD: dict[str, str] = {
    "lm_head.dense": "cls.predictions.transform.dense",
    "lm_head.layer_norm": "cls.predictions.transform.LayerNorm",
    "lm_head.decoder": "cls.predictions.decoder",
    "lm_head.bias": "cls.predictions.bias",
}


def module_renames(names: Mapping[str, str], *, reverse: bool = False) -> tuple[Rename, ...]:
    """Rules that move whole modules (``old`` and ``old.*``) to new names, or back with ``reverse``."""
    pairs = [(new, old) if reverse else (old, new) for old, new in names.items()]
    return tuple(
        rename(rf"{re.escape(old)}(?P<rest>(?:\.\w+)?)", rf"{new}\g<rest>") for old, new in pairs
    )


def lm_head_activation(config: PretrainedConfig) -> str:
    """The activation of a BERT-style prediction head: the model's ``hidden_act``."""
    return config.hidden_act if isinstance(config.hidden_act, str) else type(config.hidden_act).__name__


def _backbone(prefix: str) -> Rename:
    """Backbone keys, with the head models' prefix (``roberta.``) or without it (base models)."""
    return rename(
        rf"(?:{prefix}\.)?(?P<rest>(?:embeddings|encoder|pooler)\..+)", r"base.\g<rest>"
    )


def _same(*names: str) -> tuple[Rename, ...]:
    """Head modules whose keys already have their canonical names."""
    return tuple(rename(rf"(?P<k>{name}\..+)", r"\g<k>") for name in names)


@dataclass(frozen=True)
class SourceFamily:
    """One encoder family: how to recognise it, where its positions start, how its keys map."""

    name: str
    model_types: tuple[str, ...]
    prefix: str
    position_offset: Callable[[PretrainedConfig], int]
    head_rules: Mapping[str, tuple[Rename, ...]]
    #: The activation inside the masked-LM head (RoBERTa's is always gelu, BERT's is hidden_act).
    lm_head_activation: Callable[[PretrainedConfig], str] = lambda config: "gelu"
    #: Which targets this family converts to (``None``: all), and what to do instead.
    converts_to: Callable[[Target], bool] | None = None
    targets_hint: str = ""

    def check_converts_to(self, target: Target) -> None:
        """Refuse a target this family does not convert to, naming those it does."""
        if self.converts_to is None or self.converts_to(target):
            return
        from ..targets import all_targets

        accepted = [t.name for t in all_targets() if self.converts_to(t)]
        raise ConversionError(
            f"A {self.name} source converts to {' or '.join(accepted)}, not {target.name}; {self.targets_hint}"
        )

    def to_canonical(self, state: Mapping[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
        rules = (*self.head_rules.get(head, ()), _backbone(self.prefix))  # heads first: BERT's pooler may be one
        return rename_keys(state, rules, what=f"{self.name} {head}")


_ROBERTA_HEADS = {
    "masked_lm": _same("lm_head"),
    "sequence_classification": _same("classifier"),  # dense + out_proj, as in Longformer
    "token_classification": _same("classifier"),
    "question_answering": _same("qa_outputs"),
    "multiple_choice": _same("classifier"),
}


def _roberta_family(name: str, *model_types: str, prefix: str, **extra) -> SourceFamily:
    return SourceFamily(
        name=name,
        model_types=model_types,
        prefix=prefix,
        position_offset=lambda config: roberta_position_offset(config.pad_token_id),
        head_rules=_ROBERTA_HEADS,
        **extra,
    )


FAMILIES: tuple[SourceFamily, ...] = (
    _roberta_family("RoBERTa", "roberta", prefix="roberta"),
    _roberta_family("XLM-RoBERTa", "xlm-roberta", prefix="roberta"),
    _roberta_family("CamemBERT", "camembert", prefix="roberta"),
    # A Longformer (ours or a public one) is RoBERTa plus global q/k/v, which stay canonical
    # (``base.encoder.layer.N.attention.self.query_global.…``) for the targets that have them.
    _roberta_family(
        "Longformer", "longformer", prefix="longformer", converts_to=lambda target: target.is_encoder_decoder,
        targets_hint="to change a Longformer's length, resize it (roberta2longformer resize).",
    ),
    SourceFamily(
        name="BERT",
        model_types=("bert",),
        prefix="bert",
        # BERT numbers positions from 0: no padding offset.
        position_offset=lambda config: 0,
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
            "token_classification": _same("classifier"),
            "question_answering": _same("qa_outputs"),
            "multiple_choice": _same("classifier"),
        },
    ),
)


def supported_families() -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES)


def family_for(config: PretrainedConfig) -> SourceFamily:
    """The family of a source config, or a clear error that lists the supported ones."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            _check_absolute_positions(config)
            return family
    raise ConversionError(
        f"Source model type {model_type!r} is not supported; supported families are "
        f"{supported_families()}."
    )


def _check_absolute_positions(config: PretrainedConfig) -> None:
    kind = getattr(config, "position_embedding_type", "absolute") or "absolute"
    if kind != "absolute":
        raise ConversionError(
            f"The source uses position_embedding_type={kind!r}; only learned absolute positions "
            "can be carried over to a long model."
        )


def head_for(model: torch.nn.Module) -> str:
    """The head kind of a model instance from its class name (``…ForMaskedLM`` → ``masked_lm``)."""
    name = type(model).__name__
    for suffix, head in _HEAD_BY_CLASS_SUFFIX.items():
        if name.endswith(suffix):
            return head
    raise ConversionError(
        f"{name} has a head we cannot carry over; supported are the base model and the "
        f"{', '.join(s for s in _HEAD_BY_CLASS_SUFFIX if s != 'Model')} heads."
    )
