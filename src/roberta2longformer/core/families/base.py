"""What a source family is: how to recognise it, where its positions start, how its keys map.

A family is one :class:`SourceFamily` declared as data in its own module of this package; the
package's ``__init__`` lists them and answers the lookups. Targets never see a family: they map
from the canonical layout (:mod:`..vocabulary`) the families map into.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...compat import MAJOR as TRANSFORMERS_MAJOR
from ...errors import ConversionError
from ..keys import Rename, rename, rename_keys
from ..vocabulary import POSITION_KEY, TOKEN_TYPE_KEY

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig

_CANONICAL = "_roberta2longformer_canonical"


def backbone_rule(prefix: str) -> Rename:
    """Backbone keys, with the head models' prefix (``roberta.``) or without it (base models)."""
    return rename(rf"(?:{prefix}\.)?(?P<rest>(?:embeddings|encoder|pooler)\..+)", r"base.\g<rest>")


def no_equivalent(head_class: str, reason: str) -> str:
    """The refusal for a source head that no target reproduces."""
    return (
        f"{reason}, so no long target reproduces a converted {head_class} head (and --to extended, which keeps the "
        "heads the targets share, does not carry it either); convert the base model (or the token-classification "
        "or question-answering one) and train a fresh head on it."
    )


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
    converts_to: Callable[[Any], bool] | None = None
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
    #: The learned position table in a model of this family, relative to its backbone.
    position_key: str = "embeddings.position_embeddings.weight"

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

    def source_length(self, config: PretrainedConfig) -> int:
        """How many tokens a model of this family reads: its table less the offset rows."""
        return self.canonical_config(config).max_position_embeddings - self.position_offset(config)

    def added_weights(self, config: PretrainedConfig, dtype: torch.dtype) -> dict[str, torch.Tensor]:
        """Canonical tensors the family lacks and every target has, chosen to add nothing: one zero
        token-type row for a family without token types."""
        import torch  # not at import: the command line reads families before it needs torch

        if self.token_types:
            return {}
        return {TOKEN_TYPE_KEY: torch.zeros(1, config.hidden_size, dtype=dtype)}

    def check_converts_to(self, target: Any, candidates: Iterable[Any]) -> None:
        """Refuse a target this family does not convert to, naming those of ``candidates`` it does."""
        if self.converts_to is None or self.converts_to(target):
            return
        accepted = [t.name for t in candidates if self.converts_to(t)]
        raise ConversionError(
            f"A {self.name} source converts to {' or '.join(accepted)}, not {target.name}; {self.targets_hint}"
        )

    def rules(self, head: str) -> tuple[Rename, ...]:
        # heads first: BERT's pooler may be one
        return (*self.head_rules.get(head, ()), *self.layer_rules, backbone_rule(self.prefix))

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
        layout = {**self._embeddings_layout(config), **self._layers_layout(config), **head_layout(config, head)}
        if not self.pooler:
            layout = {name: shape for name, shape in layout.items() if not name.startswith("base.pooler.")}
        return layout

    def _embeddings_layout(self, config: PretrainedConfig) -> dict[str, tuple[int, ...]]:
        hidden = config.hidden_size
        return {
            "base.embeddings.word_embeddings.weight": (config.vocab_size, hidden),
            POSITION_KEY: (config.max_position_embeddings, hidden),
            **({TOKEN_TYPE_KEY: (config.type_vocab_size, hidden)} if self.token_types else {}),
            **linear_or_norm("base.embeddings.LayerNorm", hidden),
        }

    def _layers_layout(self, config: PretrainedConfig) -> dict[str, tuple[int, ...]]:
        hidden, inner = config.hidden_size, config.intermediate_size
        projections = (
            "query",
            "key",
            "value",
            *(("query_global", "key_global", "value_global") if self.global_projections else ()),
        )
        layout: dict[str, tuple[int, ...]] = {}
        for i in range(config.num_hidden_layers):
            layer = f"base.encoder.layer.{i}."
            for name in projections:
                layout.update(linear_or_norm(f"{layer}attention.self.{name}", hidden, hidden))
            layout.update(linear_or_norm(f"{layer}attention.output.dense", hidden, hidden))
            layout.update(linear_or_norm(f"{layer}attention.output.LayerNorm", hidden))
            layout.update(linear_or_norm(f"{layer}intermediate.dense", inner, hidden))
            layout.update(linear_or_norm(f"{layer}output.dense", hidden, inner))
            layout.update(linear_or_norm(f"{layer}output.LayerNorm", hidden))
        return layout


def linear_or_norm(module: str, size: int, inputs: int | None = None) -> dict[str, tuple[int, ...]]:
    """A linear layer's weight and bias (``inputs`` given), or a layer norm's."""
    weight = (size, inputs) if inputs is not None else (size,)
    return {f"{module}.weight": weight, f"{module}.bias": (size,)}


def head_layout(config: PretrainedConfig, head: str) -> dict[str, tuple[int, ...]]:
    """The canonical head (and pooler) weights of ``head``; the same in every family by construction."""
    hidden, labels = config.hidden_size, config.num_labels
    pooler = linear_or_norm("base.pooler.dense", hidden, hidden)
    if head == "base":
        return pooler
    if head == "masked_lm":
        # Tied to the word embeddings and to lm_head.bias unless the config unties them; then saved too.
        untied = {} if config.tie_word_embeddings else linear_or_norm("lm_head.decoder", config.vocab_size, hidden)
        if untied and TRANSFORMERS_MAJOR < 5:  # 4.x does not save the decoder's bias, a copy of lm_head.bias
            del untied["lm_head.decoder.bias"]
        return {
            **linear_or_norm("lm_head.dense", hidden, hidden),
            **linear_or_norm("lm_head.layer_norm", hidden),
            "lm_head.bias": (config.vocab_size,),
            **untied,
        }
    if head == "sequence_classification":
        return {
            **linear_or_norm("classifier.dense", hidden, hidden),
            **linear_or_norm("classifier.out_proj", labels, hidden),
        }
    if head == "token_classification":
        return linear_or_norm("classifier", labels, hidden)
    if head == "question_answering":
        return linear_or_norm("qa_outputs", labels, hidden)
    return {**pooler, **linear_or_norm("classifier", 1, hidden)}  # multiple choice: pooler(CLS) → one score
