"""The conversion plan, shared by every target and by both ways of converting (in memory, streaming):
read → canonical keys → positions → target keys, decided before any weight is copied.

The plan is given its :class:`~..targets.Target` (the pipeline looks it up by name): this layer knows
what a target *is*, never which ones exist.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from ..compat import no_init_weights
from ..errors import ConversionError, require_positive_int
from ..io.checkpoint import LazyState
from ..runtime import available_memory_bytes
from .config_map import uncarried_notes
from .families import SourceFamily, family_for
from .keys import load_checked, rename_keys
from .loading import check_floating
from .positions import rebuild_position_table
from .tokenizer import check_tokenizer_matches, convert_tokenizer, first_defined
from .vocabulary import DTYPE_NAMES, HEAD_WORDS, POSITION_KEY, WORD_EMBEDDINGS_KEY, class_suffix

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

    from ..targets import Target

DTYPES = {name: getattr(torch, name) for name in DTYPE_NAMES}


@dataclass
class Conversion:
    """A converted model with what it came from and how; ``verify`` and ``save`` take this.

    ``model`` and ``source_model`` are ``None`` after a streaming conversion (the weights went from
    file to file); the class names and the source's config always say what they are.
    """

    model: PreTrainedModel | None
    tokenizer: PreTrainedTokenizerBase | None
    source_model: PreTrainedModel | None
    source_tokenizer: PreTrainedTokenizerBase | None
    target: Target
    max_length: int
    options: dict[str, Any]
    source_name: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    model_class: str = ""
    source_class: str = ""
    source_config: PretrainedConfig | None = None
    #: What of the source the model holds, in words, and the source modules the target has no place for.
    carried: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.model is not None:
            self.model_class = self.model_class or type(self.model).__name__
        if self.source_model is not None:
            self.source_class = self.source_class or type(self.source_model).__name__
            self.source_config = self.source_config or self.source_model.config


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConversionError(f"Unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}.")
    return DTYPES[dtype]


def _special_ids(config: PretrainedConfig, tokenizer: PreTrainedTokenizerBase | None) -> dict:
    """Start/end/separator ids from the tokenizer, else the source config (BERT configs have no bos/eos)."""
    tok = tokenizer
    sep = first_defined(
        tok and tok.sep_token_id, getattr(config, "sep_token_id", None), getattr(config, "eos_token_id", None)
    )
    return {
        "sep_token_id": sep,
        "bos_token_id": first_defined(
            getattr(config, "bos_token_id", None), tok and tok.bos_token_id, tok and tok.cls_token_id
        ),
        "eos_token_id": first_defined(getattr(config, "eos_token_id", None), tok and tok.eos_token_id, sep),
    }


@dataclass(frozen=True)
class Request:
    """What a conversion was asked for, checked before anything is read: the target, the length, the
    target's options with their defaults filled in, the dtype (``None``: the source's) and the seed."""

    target: Target
    max_length: int
    options: dict[str, Any]
    dtype: torch.dtype | None
    seed: int


def make_request(
    target: Target, max_length: int, dtype: torch.dtype | str | None, seed: int, options: Mapping[str, Any]
) -> Request:
    """Refuse a bad length, dtype, seed or option for ``target``; fill in the target's defaults."""
    if not (isinstance(seed, int) and 0 <= seed < 2**32):
        raise ConversionError(f"--seed must be a whole number from 0 to 2**32 - 1, got {seed!r}.")
    return Request(target, max_length, parse_options(target, max_length, options), parse_dtype(dtype), seed)


def parse_options(target: Target, max_length: int, options: Mapping[str, Any]) -> dict[str, Any]:
    """The target's options with defaults filled in, after refusing bad lengths and options."""
    require_positive_int("--max-length", max_length, "4096 tokens")
    options = target.parse_options(options)
    target.validate(max_length, options)
    return options


@dataclass
class Plan:
    """Everything a conversion decides before any weight is copied: the target's config, and its
    state dict (whose values may still be on disk, see :class:`~..io.checkpoint.LazyState`)."""

    target: Target
    head: str
    config: PretrainedConfig
    state: LazyState
    notes: list[str]
    options: dict[str, Any]
    max_length: int
    #: What of the source the target holds, and the source modules it has no place for.
    carried: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    @property
    def class_name(self) -> str:
        """The ``transformers`` class of the converted model."""
        return self.target.model_class_names[self.head]

    @property
    def has_pooler(self) -> bool:
        return any(".pooler." in f".{k}" for k in self.state)

    def build(self, *, meta: bool = False) -> PreTrainedModel:
        """The target model with uninitialised weights, or on the meta device (no memory at all)."""
        cls = self.target.model_class(self.head)
        takes_pooler_flag = "add_pooling_layer" in inspect.signature(cls.__init__).parameters
        extra = {"add_pooling_layer": self.has_pooler} if self.head == "base" and takes_pooler_flag else {}
        return instantiate_without_init(cls, self.config, meta=meta, **extra).to(self.config.dtype)

    def load(self) -> PreTrainedModel:
        """The target model holding the planned weights, in eval mode."""
        model = self.build()
        load_checked(model, {key: self.state[key] for key in self.state})  # load_state_dict casts to the model's dtype
        return model.eval()

    def conversion(self, *, source_name: str, seconds: float, **parts: Any) -> Conversion:
        """What the plan made, for reports and cards: ``parts`` are the models and tokenizers (in memory), or
        the class names and the source's config (streaming)."""
        parts.setdefault("model", None)
        parts.setdefault("source_model", None)
        parts.setdefault("model_class", self.class_name)
        return Conversion(
            target=self.target,
            max_length=self.max_length,
            options=self.options,
            source_name=source_name,
            seconds=seconds,
            notes=list(self.notes),
            carried=self.carried,
            dropped=self.dropped,
            **parts,
        )


def check_convertible(config: PretrainedConfig, head: str, target: Target, tokenizer) -> SourceFamily:
    """Refuse a source head the target cannot reproduce, before any weight is read (the config itself was
    checked when the source was opened)."""
    family = family_for(config)
    if head in family.refused_heads:
        raise ConversionError(family.refused_heads[head])
    if head in target.unsupported_heads:
        raise ConversionError(target.unsupported_heads[head])
    if head not in target.model_class_names:
        wanted = target.config_class_name.removesuffix("Config") + class_suffix(head)
        takes = ", ".join(sorted(set(target.model_class_names.values())))
        raise ConversionError(
            f"A {class_suffix(head).removeprefix('For') or 'base'} head has no {target.title} class to go to "
            f"({wanted} is not one this tool makes: --to {target.name} gives {takes}); convert the base model and "
            "train that head on the long one, or choose another --to."
        )
    if head == "masked_lm":
        _check_lm_head_activation(family, target, family.canonical_config(config))
    if tokenizer is not None:
        check_tokenizer_matches(tokenizer, config)
    return family


def plan_conversion(
    config: PretrainedConfig,
    head: str,
    source_state: Mapping[str, Any],
    tokenizer: PreTrainedTokenizerBase | None,
    request: Request,
) -> Plan:
    """Map a source state dict (tensors, or :class:`~..io.checkpoint.StoredTensor` s) onto the target.

    Shared by the in-memory and the streaming conversion, so both compute the same tensors.
    """
    max_length, options = request.max_length, request.options
    target = request.target.for_source(config, family_for(config).canonical_names(source_state, head))
    family = check_convertible(config, head, target, tokenizer)
    config = family.canonical_config(config)
    state = LazyState(family.to_canonical(source_state, head))
    check_floating(dict.items(state))
    source_keys = tuple(state)  # before the target reshapes anything
    source_dtype = dict.__getitem__(state, WORD_EMBEDDINGS_KEY).dtype
    state.update(family.added_weights(config, source_dtype))
    target_config = target.derive_config(
        config,
        target.config_overrides(config, max_length, options, _special_ids(config, tokenizer)),
        request.dtype or source_dtype,
    )
    check_memory_for_positions(max_length, config.hidden_size, target_config.dtype)
    generator = torch.Generator().manual_seed(request.seed)
    rebuild = _position_rebuilder(state[POSITION_KEY], family.position_offset(config), config, options, generator)
    prepare_notes = target.prepare_canonical(state, rebuild, target_config, max_length)
    prefix = _prefix(target, head)
    dropped: list[str] = []
    target_state = LazyState(rename_keys(state, target.key_rules(prefix), what="canonical", dropped=dropped))
    added = target.new_weights(target_config, prefix, target_state, generator, options)
    target_state.update(added.tensors)
    dropped_modules = sorted({k.removeprefix("base.").split(".")[0] for k in dropped})
    notes = [
        *uncarried_notes(config, target.config_class, target.field_map),
        *family.notes(config),
        *_no_pooler_notes(family, head),
        *target.source_notes(config),
        *prepare_notes,
        *added.notes,
        *target.usage_notes(target_config),
        *_dropped_notes(target, dropped, dropped_modules),
    ]
    resolved = {name: value for name, value in target.saved_options(target_config).items() if options.get(name) is None}
    options = {**options, **resolved, "dtype": str(target_config.dtype).replace("torch.", ""), "seed": request.seed}
    carried = _carried(source_keys, head, config, dropped_modules)
    return Plan(target, head, target_config, target_state, notes, options, max_length, carried, tuple(dropped_modules))


def _position_rebuilder(source_table, source_offset: int, config, options: Mapping[str, Any], generator):
    """``rebuild(target_offset, length, table=None)``: the source's position table (or ``table``, e.g. a
    decoder's) rebuilt for ``length`` tokens behind ``target_offset`` rows, as ``options`` ask."""
    init = options.get("position_init", "tile")
    trained = options.get("trained_positions") if init == "tile-trained" else None

    def rebuild(target_offset: int, length: int, table: torch.Tensor | None = None) -> torch.Tensor:
        return rebuild_position_table(
            source_table if table is None else table,
            source_offset=source_offset,
            target_offset=target_offset,
            max_length=length,
            init=init,
            std=config.initializer_range,
            generator=generator,
            trained=trained,
        )

    return rebuild


def _dropped_notes(target: Target, dropped: list[str], modules: list[str]) -> list[str]:
    if not dropped:
        return []
    return [
        f"{target.config_class.__name__.removesuffix('Config')} has no place for {', '.join(modules)} "
        f"weights ({len(dropped)} tensors), so they were not carried over."
    ]


def _no_pooler_notes(family: SourceFamily, head: str) -> list[str]:
    if family.pooler or head != "base":
        return []
    return [
        f"{family.name} has no pooler; the converted base model has none either (from_pretrained builds one at "
        "random and says so), so use last_hidden_state, as with the source."
    ]


def check_memory_for_positions(max_length: int, hidden_size: int, dtype: torch.dtype) -> None:
    """Refuse a position table that cannot be built here, before trying (torch would fail midway)."""
    needed, available = max_length * hidden_size * dtype.itemsize, available_memory_bytes()
    if available is not None and needed > available:
        raise ConversionError(
            f"A {max_length:,}-token position table needs {needed / 1e6:,.0f} MB of memory and "
            f"{available / 1e6:,.0f} MB are available; choose a smaller --max-length."
        )


def _carried(keys: tuple[str, ...], head: str, config: PretrainedConfig, dropped: list[str]) -> tuple[str, ...]:
    """What of the source (its canonical ``keys``) the target holds, in words (for the model card)."""
    parts = [
        "the embeddings",
        f"all {config.num_hidden_layers} {'encoder ' if getattr(config, 'is_encoder_decoder', False) else ''}layers",
    ]
    if "pooler" not in dropped and any(key.startswith("base.pooler.") for key in keys):
        parts.append("the pooler")
    head_modules = {key.split(".")[0] for key in keys if not key.startswith("base.")}
    if head != "base" and head_modules - set(dropped):
        parts.append(HEAD_WORDS[head])
    return tuple(parts)


def converted_tokenizer(tokenizer: PreTrainedTokenizerBase | None, max_length: int, target: Target):
    return (
        convert_tokenizer(tokenizer, max_length, target.byte_level_tokenizer_class) if tokenizer is not None else None
    )


def _check_lm_head_activation(family: SourceFamily, target: Target, config: PretrainedConfig) -> None:
    """RoBERTa's masked-LM head always applies gelu, BERT-style heads apply ``hidden_act``."""
    source_act, target_act = family.lm_head_activation(config), target.lm_head_activation(config)
    if source_act != target_act:
        raise ConversionError(
            f"The source's masked-LM head applies {source_act} but {target.config_class.__name__.removesuffix('Config')}'s "
            f"applies {target_act} (from hidden_act), so its predictions would differ; convert the base model "
            "and train a fresh masked-LM head, or pick a target whose head matches."
        )


def _prefix(target: Target, head: str) -> str:
    """Key prefix of the backbone: none in a bare ``…Model``, ``longformer.`` etc. in head models."""
    return "" if target.model_class_names[head].endswith("Model") else f"{target.base_prefix}."


def instantiate_without_init(
    cls: type[PreTrainedModel], config, *, meta: bool = False, **kwargs: Any
) -> PreTrainedModel:
    """Build ``cls`` without spending time on a random init that loaded weights overwrite anyway.

    With ``meta`` the weights live on the meta device: shapes, dtypes, key names and tied weights
    exist, memory does not (what the streaming conversion checks its plan against).
    """
    with no_init_weights(), torch.device("meta") if meta else contextlib.nullcontext():
        model = cls(config, **kwargs)
    model.tie_weights()  # skipped under no_init_weights; ties only what the config says to tie
    return model
