"""Source families: what we know about each supported encoder, declared as data.

Every family is mapped onto one *canonical* layout, the RoBERTa/Longformer one: backbone keys
under ``base.`` (``base.embeddings.…``, ``base.encoder.layer.N.…``, ``base.pooler.…``) and heads
under their Longformer names (``lm_head.…``, ``classifier.…``, ``qa_outputs.…``). Targets then
map from that one layout, so adding a family or a target is one declaration, not a new script.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..compat import MAJOR as TRANSFORMERS_MAJOR
from ..errors import ConversionError, is_positive_int
from .keys import Rename, rename, rename_keys
from .positions import roberta_position_offset

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

    from ..targets import Target

HEADS: tuple[str, ...] = (
    "base",
    "masked_lm",
    "conditional_generation",
    "seq2seq_base",
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
    "ForConditionalGeneration": "conditional_generation",
}
HEAD_CLASS_SUFFIX = {head: suffix for suffix, head in _HEAD_BY_CLASS_SUFFIX.items()}
#: The transformers Auto class that loads a model with each head (an encoder-decoder: AutoModelForSeq2SeqLM).
AUTO_CLASS = {
    "base": "AutoModel",
    "masked_lm": "AutoModelForMaskedLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "question_answering": "AutoModelForQuestionAnswering",
    "multiple_choice": "AutoModelForMultipleChoice",
    "conditional_generation": "AutoModelForSeq2SeqLM",
    "seq2seq_base": "AutoModel",
}
#: The Hugging Face pipeline tag of a model with each head (multiple choice has none).
PIPELINE_TAG = {
    "base": "feature-extraction",
    "masked_lm": "fill-mask",
    "sequence_classification": "text-classification",
    "token_classification": "token-classification",
    "question_answering": "question-answering",
    "conditional_generation": "text2text-generation",
    "seq2seq_base": "feature-extraction",
}

POSITION_KEY = "base.embeddings.position_embeddings.weight"
_CANONICAL = "_roberta2longformer_canonical"
#: An encoder-decoder source's decoder positions, and the prefix of its modules that an encoder-decoder
#: target takes as they are (``s2s.decoder.layers.0.encoder_attn.…``).
DECODER_POSITION_KEY = "decoder.embed_positions.weight"
SEQ2SEQ_PREFIX = "s2s."

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
    return tuple(rename(rf"{re.escape(old)}(?P<rest>(?:\.\w+)?)", rf"{new}\g<rest>") for old, new in pairs)


def lm_head_activation(config: PretrainedConfig) -> str:
    """The activation of a BERT-style prediction head: the model's ``hidden_act``."""
    return config.hidden_act if isinstance(config.hidden_act, str) else type(config.hidden_act).__name__


def _backbone(prefix: str) -> Rename:
    """Backbone keys, with the head models' prefix (``roberta.``) or without it (base models)."""
    return rename(rf"(?:{prefix}\.)?(?P<rest>(?:embeddings|encoder|pooler)\..+)", r"base.\g<rest>")


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
    #: Per-layer projections beyond RoBERTa's (a Longformer's global ``query/key/value``).
    global_projections: bool = False
    #: Rules for backbone keys laid out otherwise than BERT's (DistilBERT's ``transformer.layer.N.q_lin``),
    #: tried before the BERT-style ones.
    layer_rules: tuple[Rename, ...] = ()
    #: Canonical (BERT) config field → this family's name for it (DistilBERT's ``hidden_dim``), and the
    #: canonical fields its configs lack, with the value its models use (DistilBERT's fixed 1e-12 eps).
    config_aliases: Mapping[str, str] = field(default_factory=dict)
    config_constants: Mapping[str, Any] = field(default_factory=dict)
    #: Canonical fields computed from the source's (BART's table rows: its positions plus two offset rows).
    config_derived: Callable[[PretrainedConfig], Mapping[str, Any]] = lambda config: {}
    #: Whether its embeddings add token types, and whether its base model has a pooler.
    token_types: bool = True
    pooler: bool = True
    #: Heads no target reproduces from this family's, and why (the refusal's words).
    refused_heads: Mapping[str, str] = field(default_factory=dict)
    #: Refuses a config that no target can reproduce (ELECTRA's embedding projection).
    check_config: Callable[[PretrainedConfig], None] = lambda config: None
    #: What the report should say about this family's sources (DistilBERT's sinusoidal positions).
    notes: Callable[[PretrainedConfig], list[str]] = lambda config: []
    #: The canonical weights and shapes of a layout other than the BERT-shaped one (BART's).
    layout: Callable[[PretrainedConfig, str], dict[str, tuple[int, ...]]] | None = None
    #: An encoder-decoder family: its decoder is carried too (only to encoder-decoder targets), and
    #: its base model (``{class_prefix}Model``, e.g. ``BartModel``) is the ``seq2seq_base`` head.
    is_encoder_decoder: bool = False
    class_prefix: str = ""

    def canonical_config(self, config: PretrainedConfig) -> PretrainedConfig:
        """``config`` with the canonical (BERT) field names every target reads; the same object for
        families that already use them."""
        if not self.config_aliases and not self.config_constants or getattr(config, _CANONICAL, False):
            return config
        view = copy.deepcopy(config)
        for canonical, own in self.config_aliases.items():
            setattr(view, canonical, getattr(config, own))
        for canonical, value in self.config_constants.items():
            if getattr(view, canonical, None) is None:
                setattr(view, canonical, value)
        for canonical, value in self.config_derived(config).items():
            setattr(view, canonical, value)
        setattr(view, _CANONICAL, True)  # a view is not translated twice
        return view

    def added_weights(self, config: PretrainedConfig, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Canonical tensors the family lacks and every target has, chosen to add nothing: one zero
        token-type row for a family without token types."""
        import torch

        if self.token_types:
            return {}
        return {"base.embeddings.token_type_embeddings.weight": torch.zeros(1, config.hidden_size, dtype=dtype)}

    def check_converts_to(self, target: Target) -> None:
        """Refuse a target this family does not convert to, naming those it does."""
        if self.converts_to is None or self.converts_to(target):
            return
        from ..targets import all_targets

        accepted = [t.name for t in all_targets() if self.converts_to(t)]
        raise ConversionError(
            f"A {self.name} source converts to {' or '.join(accepted)}, not {target.name}; {self.targets_hint}"
        )

    def rules(self, head: str) -> tuple[Rename, ...]:
        # heads first: BERT's pooler may be one
        return (*self.head_rules.get(head, ()), *self.layer_rules, _backbone(self.prefix))

    def to_canonical(self, state: Mapping[str, torch.Tensor], head: str) -> dict[str, torch.Tensor]:
        return rename_keys(state, self.rules(head), what=f"{self.name} {head}")

    def canonical_names(self, keys: Iterable[str], head: str) -> dict[str, str]:
        """Canonical name → stored key, for the stored keys that name a weight of this family's ``head``
        model; the others (buffers, or tensors of another layout) are left out for the caller to report."""
        rules = self.rules(head)
        named = {key: key for key in keys if any(rule.apply(key) is not None for rule in rules)}
        return self.to_canonical(named, head)

    def canonical_layout(self, config: PretrainedConfig, head: str) -> dict[str, tuple[int, ...]]:
        """Every weight that ``save_pretrained`` writes for this family's ``head`` model, under its canonical
        name, with its shape: what a complete checkpoint holds (tied copies are not written).

        Declared from the config alone, so a checkpoint can be checked without building its model class
        (which costs seconds of imports); ``tests/test_targets.py`` proves it equal to what transformers'
        own classes save, for every family and head.
        """
        config = self.canonical_config(config)
        if self.layout is not None:
            return self.layout(config, head)
        hidden, inner, vocab = config.hidden_size, config.intermediate_size, config.vocab_size
        layout = {
            "base.embeddings.word_embeddings.weight": (vocab, hidden),
            POSITION_KEY: (config.max_position_embeddings, hidden),
            **(
                {"base.embeddings.token_type_embeddings.weight": (config.type_vocab_size, hidden)}
                if self.token_types
                else {}
            ),
            **_linear_or_norm("base.embeddings.LayerNorm", hidden),
        }
        projections = (
            "query",
            "key",
            "value",
            *(("query_global", "key_global", "value_global") if self.global_projections else ()),
        )
        for i in range(config.num_hidden_layers):
            layer = f"base.encoder.layer.{i}."
            for name in projections:
                layout.update(_linear_or_norm(f"{layer}attention.self.{name}", hidden, hidden))
            layout.update(_linear_or_norm(f"{layer}attention.output.dense", hidden, hidden))
            layout.update(_linear_or_norm(f"{layer}attention.output.LayerNorm", hidden))
            layout.update(_linear_or_norm(f"{layer}intermediate.dense", inner, hidden))
            layout.update(_linear_or_norm(f"{layer}output.dense", hidden, inner))
            layout.update(_linear_or_norm(f"{layer}output.LayerNorm", hidden))
        layout.update(_head_layout(config, head))
        if not self.pooler:
            layout = {name: shape for name, shape in layout.items() if not name.startswith("base.pooler.")}
        return layout


def _linear_or_norm(module: str, size: int, inputs: int | None = None) -> dict[str, tuple[int, ...]]:
    """A linear layer's weight and bias (``inputs`` given), or a layer norm's."""
    weight = (size, inputs) if inputs is not None else (size,)
    return {f"{module}.weight": weight, f"{module}.bias": (size,)}


def _head_layout(config: PretrainedConfig, head: str) -> dict[str, tuple[int, ...]]:
    """The canonical head (and pooler) weights of ``head``; the same in every family by construction."""
    hidden, labels = config.hidden_size, config.num_labels
    pooler = _linear_or_norm("base.pooler.dense", hidden, hidden)
    if head == "base":
        return pooler
    if head == "masked_lm":
        # Tied to the word embeddings and to lm_head.bias unless the config unties them; then saved too.
        untied = {} if config.tie_word_embeddings else _linear_or_norm("lm_head.decoder", config.vocab_size, hidden)
        if untied and TRANSFORMERS_MAJOR < 5:  # 4.x does not save the decoder's bias, a copy of lm_head.bias
            del untied["lm_head.decoder.bias"]
        return {
            **_linear_or_norm("lm_head.dense", hidden, hidden),
            **_linear_or_norm("lm_head.layer_norm", hidden),
            "lm_head.bias": (config.vocab_size,),
            **untied,
        }
    if head == "sequence_classification":
        return {
            **_linear_or_norm("classifier.dense", hidden, hidden),
            **_linear_or_norm("classifier.out_proj", labels, hidden),
        }
    if head == "token_classification":
        return _linear_or_norm("classifier", labels, hidden)
    if head == "question_answering":
        return _linear_or_norm("qa_outputs", labels, hidden)
    return {**pooler, **_linear_or_norm("classifier", 1, hidden)}  # multiple choice: pooler(CLS) → one score


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
        "Longformer",
        "longformer",
        prefix="longformer",
        converts_to=lambda target: target.is_encoder_decoder,
        global_projections=True,
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


def _no_equivalent(head_class: str, reason: str) -> str:
    return (
        f"{reason}, so no long target reproduces a converted {head_class} head; convert the base model (or "
        "the token-classification or question-answering one) and train a fresh head on it."
    )


def _check_electra_embeddings(config: PretrainedConfig) -> None:
    embedding, hidden = getattr(config, "embedding_size", config.hidden_size), config.hidden_size
    if embedding != hidden:
        raise ConversionError(
            f"This ELECTRA's embeddings have {embedding} dimensions and its layers {hidden}; it projects between "
            "them (embeddings_project), which no long target has a place for, so only ELECTRAs whose "
            "embedding_size equals hidden_size convert (most discriminators; generators usually differ)."
        )


def _sinusoidal_note(config: PretrainedConfig) -> list[str]:
    if not getattr(config, "sinusoidal_pos_embds", False):
        return []
    return [
        "The source's positions are fixed sinusoids (sinusoidal_pos_embds); the converted model's are a learned "
        "table whose first rows are those sinusoids and whose new rows follow position_init, all trainable."
    ]


def _distilbert_layer(pattern: str, canonical: str) -> Rename:
    return rename(
        rf"(?:distilbert\.)?transformer\.layer\.(?P<i>\d+)\.{pattern}\.(?P<t>\w+)",
        rf"base.encoder.layer.\g<i>.{canonical}.\g<t>",
    )


_DISTILBERT_LAYERS = (
    _distilbert_layer("attention\\.q_lin", "attention.self.query"),
    _distilbert_layer("attention\\.k_lin", "attention.self.key"),
    _distilbert_layer("attention\\.v_lin", "attention.self.value"),
    _distilbert_layer("attention\\.out_lin", "attention.output.dense"),
    _distilbert_layer("sa_layer_norm", "attention.output.LayerNorm"),
    _distilbert_layer("ffn\\.lin1", "intermediate.dense"),
    _distilbert_layer("ffn\\.lin2", "output.dense"),
    _distilbert_layer("output_layer_norm", "output.LayerNorm"),
)

FAMILIES = FAMILIES + (
    SourceFamily(
        name="ELECTRA",
        model_types=("electra",),
        prefix="electra",
        position_offset=lambda config: 0,  # numbered from 0, as BERT
        head_rules={
            # The generator's head: dense -> gelu -> LayerNorm -> tied decoder, as RoBERTa's lm_head.
            "masked_lm": module_renames(
                {
                    "generator_predictions.dense": "lm_head.dense",
                    "generator_predictions.LayerNorm": "lm_head.layer_norm",
                    "generator_lm_head.weight": "lm_head.decoder.weight",
                    "generator_lm_head.bias": "lm_head.bias",
                }
            ),
            "token_classification": _same("classifier"),
            "question_answering": _same("qa_outputs"),
        },
        pooler=False,
        refused_heads={
            "sequence_classification": _no_equivalent(
                "sequence-classification", "ELECTRA's classification head applies gelu where the targets' apply tanh"
            ),
            "multiple_choice": _no_equivalent(
                "multiple-choice", "ELECTRA scores choices through a sequence summary that the targets do not have"
            ),
        },
        check_config=_check_electra_embeddings,
    ),
    SourceFamily(
        name="DistilBERT",
        model_types=("distilbert",),
        prefix="distilbert",
        position_offset=lambda config: 0,
        lm_head_activation=lambda config: config.activation,
        layer_rules=_DISTILBERT_LAYERS,
        head_rules={
            "masked_lm": module_renames(
                {
                    "vocab_transform": "lm_head.dense",
                    "vocab_layer_norm": "lm_head.layer_norm",
                    "vocab_projector.weight": "lm_head.decoder.weight",
                    "vocab_projector.bias": "lm_head.bias",
                }
            ),
            "token_classification": _same("classifier"),
            "question_answering": _same("qa_outputs"),
        },
        config_aliases={
            "intermediate_size": "hidden_dim",
            "hidden_act": "activation",
            "hidden_dropout_prob": "dropout",
            "attention_probs_dropout_prob": "attention_dropout",
        },
        config_constants={"type_vocab_size": 1, "layer_norm_eps": 1e-12},  # its LayerNorms are built with 1e-12
        token_types=False,
        pooler=False,
        refused_heads={
            head: _no_equivalent(
                words, "DistilBERT's head applies ReLU on pre_classifier where the targets' apply tanh"
            )
            for head, words in (
                ("sequence_classification", "sequence-classification"),
                ("multiple_choice", "multiple-choice"),
            )
        },
        notes=_sinusoidal_note,
    ),
)


#: Canonical (BERT) config fields → their names in BART-style configs (BART's, LED's).
BART_STYLE_FIELDS: dict[str, str] = {
    "hidden_size": "d_model",
    "num_hidden_layers": "encoder_layers",
    "num_attention_heads": "encoder_attention_heads",
    "intermediate_size": "encoder_ffn_dim",
    "hidden_act": "activation_function",
    "hidden_dropout_prob": "dropout",
    "attention_probs_dropout_prob": "attention_dropout",
    "initializer_range": "init_std",
}

#: BART module (under ``encoder.layers.N.``) → its LED name; the others keep theirs.
_BART_ENCODER_ATTENTION = {
    "self_attn.q_proj": "self_attn.longformer_self_attn.query",
    "self_attn.k_proj": "self_attn.longformer_self_attn.key",
    "self_attn.v_proj": "self_attn.longformer_self_attn.value",
    "self_attn.out_proj": "self_attn.output",
}
_BART_LAYER_MODULES = ("self_attn_layer_norm", "fc1", "fc2", "final_layer_norm")
_BART_CROSS_MODULES = ("encoder_attn.q_proj", "encoder_attn.k_proj", "encoder_attn.v_proj", "encoder_attn.out_proj",
                       "encoder_attn_layer_norm")  # fmt: skip
_BART_DECODER_ATTENTION = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj")


def _bart_rules() -> tuple[Rename, ...]:
    """BART's keys (``model.`` in head models) → canonical: the embeddings and both position tables under
    their canonical names, every other module under ``s2s.`` with LED's names; tied copies dropped."""
    model, s2s = r"(?:model\.)?", SEQ2SEQ_PREFIX
    layer = r"\.layers\.(?P<i>\d+)\."
    return (
        rename(model + r"shared\.weight", "base.embeddings.word_embeddings.weight"),
        rename(model + r"(?:encoder|decoder)\.embed_tokens\.weight"),  # tied to shared
        rename(r"lm_head\.weight"),  # tied to shared
        rename(model + r"encoder\.embed_positions\.weight", POSITION_KEY),
        rename(model + r"decoder\.embed_positions\.weight", DECODER_POSITION_KEY),
        rename(model + r"(?P<part>encoder|decoder)\.layernorm_embedding\.(?P<t>\w+)", s2s + r"\g<part>.layernorm_embedding.\g<t>"),
        *(
            rename(model + r"encoder" + layer + re.escape(bart) + r"\.(?P<t>\w+)", s2s + rf"encoder.layers.\g<i>.{led}.\g<t>")
            for bart, led in _BART_ENCODER_ATTENTION.items()
        ),
        rename(
            model + r"(?P<part>encoder|decoder)" + layer + rf"(?P<m>{'|'.join(map(re.escape, _BART_LAYER_MODULES))})\.(?P<t>\w+)",
            s2s + r"\g<part>.layers.\g<i>.\g<m>.\g<t>",
        ),
        rename(
            model + r"decoder" + layer
            + rf"(?P<m>{'|'.join(map(re.escape, (*_BART_DECODER_ATTENTION, *_BART_CROSS_MODULES)))})\.(?P<t>\w+)",
            s2s + r"decoder.layers.\g<i>.\g<m>.\g<t>",
        ),
        rename(r"final_logits_bias", "final_logits_bias"),
    )  # fmt: skip


def _bart_layout(config: PretrainedConfig, head: str) -> dict[str, tuple[int, ...]]:
    """What ``save_pretrained`` writes for a BART (canonical names; ``config`` canonical: its
    ``max_position_embeddings`` counts the table's two offset rows)."""
    d, vocab, rows = config.d_model, config.vocab_size, config.max_position_embeddings
    layout = {
        "base.embeddings.word_embeddings.weight": (vocab, d),
        POSITION_KEY: (rows, d),
        DECODER_POSITION_KEY: (rows, d),
    }
    for part, layers, inner in (("encoder", config.encoder_layers, config.encoder_ffn_dim),
                                ("decoder", config.decoder_layers, config.decoder_ffn_dim)):  # fmt: skip
        layout.update(_linear_or_norm(f"{SEQ2SEQ_PREFIX}{part}.layernorm_embedding", d))
        attention = (
            _BART_ENCODER_ATTENTION.values()
            if part == "encoder"
            else (*_BART_DECODER_ATTENTION, *_BART_CROSS_MODULES[:4])
        )
        for i in range(layers):
            layer = f"{SEQ2SEQ_PREFIX}{part}.layers.{i}."
            for module in attention:
                layout.update(_linear_or_norm(layer + module, d, d))
            norms = (
                "self_attn_layer_norm",
                "final_layer_norm",
                *(("encoder_attn_layer_norm",) if part == "decoder" else ()),
            )
            for module in norms:
                layout.update(_linear_or_norm(layer + module, d))
            layout.update(_linear_or_norm(layer + "fc1", inner, d))
            layout.update(_linear_or_norm(layer + "fc2", d, inner))
    if head == "conditional_generation":
        layout["final_logits_bias"] = (1, vocab)
    return layout


def _check_bart_embeddings(config: PretrainedConfig) -> None:
    if getattr(config, "scale_embedding", False):
        raise ConversionError(
            "This BART scales its token embeddings by sqrt(d_model) (scale_embedding), which LED does not, so an "
            "LED cannot reproduce it; only BARTs with scale_embedding=False (facebook/bart-base, -large) convert."
        )


FAMILIES = FAMILIES + (
    SourceFamily(
        name="BART",
        model_types=("bart",),
        prefix="model",
        # Its tables hold two rows before position 0 (BartLearnedPositionalEmbedding's offset), whatever the padding.
        position_offset=lambda config: 2,
        head_rules={head: _bart_rules() for head in ("seq2seq_base", "conditional_generation")},
        converts_to=lambda target: target.is_encoder_decoder,
        targets_hint="LED is BART with Longformer self-attention in its encoder (--to led).",
        config_aliases=BART_STYLE_FIELDS,
        config_constants={"type_vocab_size": 1, "layer_norm_eps": 1e-5},  # nn.LayerNorm's default, as LED's
        config_derived=lambda config: {"max_position_embeddings": config.max_position_embeddings + 2},
        token_types=False,
        pooler=False,
        check_config=_check_bart_embeddings,
        layout=_bart_layout,
        is_encoder_decoder=True,
        class_prefix="Bart",
    ),
)


def supported_families() -> str:
    return ", ".join(f"{f.name} ({'/'.join(f.model_types)})" for f in FAMILIES)


def supported_family(config: PretrainedConfig) -> bool:
    return any(getattr(config, "model_type", None) in family.model_types for family in FAMILIES)


def family_for(config: PretrainedConfig) -> SourceFamily:
    """The family of a source config, or a clear error that lists the supported ones."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            _check_absolute_positions(config)
            check_config_values(family.canonical_config(config), family.position_offset)
            family.check_config(config)
            return family
    raise ConversionError(
        f"Source model type {model_type!r} is not supported; supported families are {supported_families()}."
    )


def readable_length(config: PretrainedConfig) -> int:
    """How many tokens a model reads: a long model's length (one of our targets), or a source's learned
    positions (its table less the offset rows)."""
    from ..targets import target_or_none

    target = target_or_none(config)
    if target is not None:
        return target.max_length(config)
    family = family_for(config)
    return family.canonical_config(config).max_position_embeddings - family.position_offset(config)


_SIZE_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "vocab_size",
)


def config_problems(config: PretrainedConfig, position_offset: Callable[[PretrainedConfig], int]) -> list[str]:
    """What in a source config no model can have (sizes, ids, activation), in words; empty when sane."""
    problems = [
        f"{name}={getattr(config, name, None)!r} (must be a positive whole number)"
        for name in _SIZE_FIELDS
        if not is_positive_int(getattr(config, name, None))
    ]
    if problems:
        return problems
    if config.hidden_size % config.num_attention_heads:
        problems.append(
            f"hidden_size={config.hidden_size} is not a multiple of num_attention_heads={config.num_attention_heads}"
        )
    pad = getattr(config, "pad_token_id", None)
    if pad is not None and not (isinstance(pad, int) and 0 <= pad < config.vocab_size):
        problems.append(f"pad_token_id={pad!r} is not an id of the {config.vocab_size}-token vocabulary")
    if not problems:
        offset = position_offset(config)
        if config.max_position_embeddings <= offset:
            problems.append(
                f"max_position_embeddings={config.max_position_embeddings} leaves no position after the {offset} offset rows"
            )
    activation = getattr(config, "hidden_act", "gelu")
    if isinstance(activation, str) and activation not in known_activations():
        problems.append(f"hidden_act={activation!r} is not an activation transformers knows")
    return problems


_LAYER_INDEX = re.compile(r"(?:^|\.)layer\.(\d+)\.")


def check_layer_count(config: PretrainedConfig, keys: Iterable[str], location: object) -> None:
    """Refuse weights for more layers than the config has: a model built from it would drop them."""
    indices = {int(m.group(1)) for key in keys if (m := _LAYER_INDEX.search(key))}
    if indices and max(indices) >= config.num_hidden_layers:
        raise ConversionError(
            f"The checkpoint in {location} has weights for {max(indices) + 1} layers but its config.json says "
            f"num_hidden_layers={config.num_hidden_layers}; give the config.json that was saved with these weights."
        )


@functools.cache
def known_activations() -> frozenset[str]:
    """The activation names transformers knows (``ACT2CLS``'s keys), read from its own source.

    Importing ``transformers.activations`` pulls in its kernel-hub integration: 1.2 s of imports
    (``python -X importtime``) that a streaming conversion otherwise never pays. Once a model class
    has imported it anyway, its table is used directly.
    """
    import sys

    if "transformers.activations" not in sys.modules:
        import ast
        import importlib.util

        spec = importlib.util.find_spec("transformers.activations")
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8")) if spec and spec.origin else ast.Module([], [])
        for node in tree.body:
            names = [getattr(t, "id", None) for t in node.targets] if isinstance(node, ast.Assign) else []
            if "ACT2CLS" in names and isinstance(node.value, ast.Dict):
                return frozenset(k.value for k in node.value.keys if isinstance(k, ast.Constant))
    from transformers.activations import ACT2FN

    return frozenset(ACT2FN)


def check_config_values(config: PretrainedConfig, position_offset: Callable[[PretrainedConfig], int]) -> None:
    problems = config_problems(config, position_offset)
    if problems:
        raise ConversionError(
            f"The source's config.json cannot describe a model ({'; '.join(problems)}); "
            "give the config.json that was saved with these weights."
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
    return head_for_class_name(type(model).__name__)


def saved_class_name(config: PretrainedConfig) -> str:
    """The class a checkpoint was saved from (``architectures[0]``); without one, the family's base model."""
    names = getattr(config, "architectures", None) or ()
    return names[0] if names else "Model"


def head_for_class_name(name: str) -> str:
    """The head kind of a class name (``RobertaForMaskedLM`` → ``masked_lm``; ``BartModel`` → ``seq2seq_base``)."""
    if any(f.is_encoder_decoder and name == f"{f.class_prefix}Model" for f in FAMILIES):
        return "seq2seq_base"
    for suffix, head in _HEAD_BY_CLASS_SUFFIX.items():
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
        f"{', '.join(s for s in _HEAD_BY_CLASS_SUFFIX if s != 'Model')} heads."
    )
