"""What a target is: the :class:`Target` base class, its options, and the registry.

A target is one flat subclass of :class:`Target` in its own module of this package, decorated
with :func:`register`. It declares plain data as class attributes (its ``transformers`` classes
by name, its options, what kind of model it is) and overrides only the methods, grouped below by
the phase that calls them, whose defaults do not fit it. The conversion core, verification,
training and the command line ask the registry and these properties; none of them tests a
target's name.

This module imports neither ``torch`` nor ``transformers``: the command line builds its options
from the registry before anything heavy is loaded, and classes are looked up by name when used.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..core.positions import POSITION_INITS, check_position_init
from ..core.vocabulary import POSITION_KEY
from ..errors import ConversionError

if TYPE_CHECKING:
    from typing import TypeAlias

    import torch
    from transformers import PretrainedConfig, PreTrainedModel

    from ..core.keys import Rename

    # Short names for the types the methods below pass around (so overrides fit on one line).
    Config: TypeAlias = PretrainedConfig
    Options: TypeAlias = Mapping[str, Any]
    State: TypeAlias = Mapping[str, torch.Tensor]
    MutableState: TypeAlias = dict[str, torch.Tensor]
    Rebuild: TypeAlias = Callable[[int, int], torch.Tensor]
    Generator: TypeAlias = torch.Generator


class Approximation(NamedTuple):
    """One length at which to measure an approximating attention, and how to run the model there."""

    length: int
    regime: str
    mode: contextlib.AbstractContextManager


class NewWeights(NamedTuple):
    """Weights a target needs that the source does not have, and what users must know about them."""

    tensors: dict[str, torch.Tensor]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Option:
    """One conversion option of a target: its keyword, type, default, and what it means.

    ``flag`` is the command line's name when it differs from the keyword (``--segment-length``
    for ``segment_means_seq_len``); ``choices`` restricts a text option; ``default_text`` says what a
    ``None`` default means.
    """

    name: str
    type: type
    default: Any
    help: str
    flag: str | None = None
    choices: tuple[str, ...] | None = None
    default_text: str | None = None

    @property
    def cli_name(self) -> str:
        return (self.flag or self.name).replace("_", "-")


#: The option every target has: how rows beyond the source's positions are filled.
POSITION_INIT = Option(
    "position_init",
    str,
    "tile",
    "How to fill position rows beyond the source's: tile (repeat, as in the Longformer paper), tile-trained "
    "(repeat only the first --trained-positions rows), interpolate, random, or random-all (every row fresh: the "
    "paper's ablation, not exact). The source's rows are kept (with tile-trained, its first N).",
    choices=POSITION_INITS,
)
#: With ``tile-trained``: how many of the source's rows were trained (and are repeated).
TRAINED_POSITIONS = Option(
    "trained_positions",
    int,
    None,
    "With --position-init tile-trained: the source's position rows that were trained, repeated over the new table.",
    default_text="a sentence-transformers source's max_seq_length, else all",
)


def no_equivalent_head(reason: str, head: str) -> str:
    """The refusal for a source head that a target's head class cannot reproduce."""
    return (
        f"{reason}, so a converted {head} head would not compute what the source's did; convert the "
        f"base or masked-LM model and train a fresh {head} head on it."
    )


def no_equivalent_heads(**reasons: str) -> dict[str, str]:
    """``unsupported_heads`` from the reason for each head kind (``sequence_classification="…"``)."""
    return {head: no_equivalent_head(reason, head.replace("_", "-")) for head, reason in reasons.items()}


def _transformers_class(name: str) -> type:
    import transformers  # not at import: the command line reads the targets before it needs torch

    return getattr(transformers, name)


class Target:
    """A long-context architecture we convert to; subclasses say only what differs.

    Class attributes (data):

    - ``name``, ``title``: the registry key (``--to``) and how people write it;
    - ``config_class_name``, ``model_class_names`` (head kind → class), ``byte_level_tokenizer_name``:
      the plain ``transformers`` classes, by name;
    - ``model_type``: what ``config.model_type`` says in a saved model of this target;
    - ``base_prefix``: the attribute holding the backbone in head models (``longformer``);
    - ``options``: the target's own :class:`Option` s (``position_init`` is added for all);
    - ``field_map``: source config field → this target's name for it (``None``: not carried);
    - ``unsupported_heads``: head kind → why the target cannot reproduce it;
    - ``position_key``: the learned position table, relative to the backbone (for ``resize``);
    - the properties ``is_encoder_decoder``, ``uses_global_tokens``, ``has_fixed_input_length``,
      ``approximates_attention`` and ``has_fast_attention``: what kind of model this is;
    - ``exact_where``, ``training_advice``, ``notice``: words for the report and the model card.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    config_class_name: ClassVar[str]
    model_type: ClassVar[str]
    model_class_names: ClassVar[Mapping[str, str]]
    base_prefix: ClassVar[str]
    byte_level_tokenizer_name: ClassVar[str | None] = None
    options: ClassVar[tuple[Option, ...]] = ()
    field_map: ClassVar[Mapping[str, str | None]] = {}
    unsupported_heads: ClassVar[Mapping[str, str]] = {}
    position_key: ClassVar[str] = "embeddings.position_embeddings.weight"

    #: An encoder-decoder: verification compares the encoder (see :meth:`compared_module`).
    is_encoder_decoder: ClassVar[bool] = False
    #: Takes a ``global_attention_mask`` (its global tokens have their own projections).
    uses_global_tokens: ClassVar[bool] = False
    #: Reads inputs of exactly one length (:meth:`input_length`), padded to it.
    has_fixed_input_length: ClassVar[bool] = False
    #: Approximates attention beyond its exact regime (verification reports what that costs).
    approximates_attention: ClassVar[bool] = False
    #: Its encoder layers run on :mod:`roberta2longformer.fast`.
    has_fast_attention: ClassVar[bool] = False

    exact_where: ClassVar[str] = "where its attention is exact"
    training_advice: ClassVar[str] = (
        "continued masked-LM pretraining at the new length (the Longformer paper used a few thousand steps)"
    )
    notice: ClassVar[str] = ""

    # ------------------------------------------------------------------------------ identity

    def matches(self, config: PretrainedConfig) -> bool:
        """Whether ``config`` is that of a saved model of this target."""
        return config.model_type == self.model_type

    def for_source(self, config: PretrainedConfig, names: Mapping[str, str] | None = None) -> Target:
        """This target as it applies to a model with ``config`` (a source to convert, with ``names``: the key
        it stored under each canonical key; or a saved model of this target). A target whose classes are fixed
        is itself; one whose classes are the source's (``keeps_source_class``) is bound to them."""
        return self

    @property
    def config_class(self) -> type[PretrainedConfig]:
        return _transformers_class(self.config_class_name)

    def model_class(self, head: str) -> type[PreTrainedModel]:
        """The ``transformers`` class for ``head`` (importing it imports the modeling code: seconds)."""
        return _transformers_class(self.model_class_names[head])

    @property
    def model_classes(self) -> dict[str, type[PreTrainedModel]]:
        return {head: self.model_class(head) for head in self.model_class_names}

    @property
    def byte_level_tokenizer_class(self) -> type | None:
        return _transformers_class(self.byte_level_tokenizer_name) if self.byte_level_tokenizer_name else None

    @classmethod
    def all_options(cls) -> tuple[Option, ...]:
        return (*cls.options, POSITION_INIT, TRAINED_POSITIONS)

    @classmethod
    def default_options(cls) -> dict[str, Any]:
        return {option.name: option.default for option in cls.all_options()}

    def parse_options(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` with defaults filled in (``None`` means the default); unknown options refused."""
        defaults = self.default_options()
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            declared = [option for target in Target.__subclasses__() for option in target.options]
            flags = {option.name: f"--{option.cli_name}" for option in declared}
            named = ", ".join(flags.get(name, f"--{name.replace('_', '-')}") for name in unknown)
            own = ", ".join(f"--{option.cli_name}" for option in self.all_options())
            raise ConversionError(f"{named} does not apply to --to {self.name}; its options are {own}.")
        return {**defaults, **{k: v for k, v in given.items() if v is not None}}

    # ------------------------------------------------------------------------------- mapping

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        """Renames from the canonical layout (see :mod:`..core.sources`) to this target's keys;
        ``prefix`` is ``"longformer."`` (the ``base_prefix``) for head models, ``""`` for base models."""
        raise NotImplementedError

    def position_offset(self, config: PretrainedConfig) -> int:
        """Rows before the first learned position row in this target's table."""
        return 0

    def prepare_canonical(self, state: MutableState, rebuild: Rebuild, config: Config, max_length: int) -> list[str]:
        """Put the position table(s) into the canonical ``state`` with any other reshaping the target
        needs, and return notes for the user; ``rebuild(offset, length)`` gives the source's rows moved
        behind ``offset`` rows and extended to ``length``. Default: one table behind the offset."""
        state[POSITION_KEY] = rebuild(self.position_offset(config), max_length)
        return []

    def new_weights(
        self, config: Config, prefix: str, state: State, generator: Generator, options: Options
    ) -> NewWeights:
        """Weights with no source counterpart in the mapped ``state``, set so the model stays equivalent,
        with a note for each one that is not (seeded by ``generator``)."""
        return NewWeights({})

    # -------------------------------------------------------------------------------- config

    def validate(self, max_length: int, options: Mapping[str, Any]) -> None:
        """Raise :class:`ConversionError` for bad options (before anything is read)."""
        check_position_init(options["position_init"])

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        """The fields the target changes or adds; everything else is carried from the source."""
        return {"max_position_embeddings": max_length}

    def derive_config(self, canonical: Config, overrides: Options, dtype: torch.dtype) -> PretrainedConfig:
        """The target's config: the source's shared fields (from its ``canonical`` view), then ``overrides``."""
        from ..core.config_map import derive_config  # torch and transformers: only when a conversion is planned

        return derive_config(canonical, self.config_class, overrides, dtype=dtype, field_map=self.field_map)

    def usage_notes(self, config: PretrainedConfig) -> list[str]:
        """What a user of a saved model of this target must know (its ``notice``), for the report and card."""
        return [self.notice] if self.notice else []

    def source_notes(self, source: PretrainedConfig) -> list[str]:
        """What this target cannot represent of the source's config."""
        return []

    def max_length(self, config: PretrainedConfig) -> int:
        """How many learned position rows a saved model of this target has."""
        return config.max_position_embeddings

    def input_length(self, config: PretrainedConfig) -> int:
        """The length a model of this target is run at for one full-length input (smoke run, training)."""
        return self.max_length(config)

    def saved_options(self, config: PretrainedConfig) -> dict[str, Any]:
        """The conversion options a saved model was made with."""
        return {}

    def resize_fields(self, config: PretrainedConfig, max_length: int) -> dict[str, Any]:
        """The config fields that change when a saved model of this target is resized."""
        return {"max_position_embeddings": max_length}

    # -------------------------------------------------------------------------- verification

    def exact_length(self, config: PretrainedConfig) -> int | None:
        """The longest input on which the target's attention reproduces full attention (``None``: any);
        verification also bounds it by both position tables."""
        return None

    def extra_inputs(self, input_ids: torch.Tensor, global_first: bool) -> dict[str, torch.Tensor]:
        """Forward arguments only this target takes (Longformer's ``global_attention_mask``)."""
        return {}

    def exact_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        """A context in which ``model`` computes exactly (at ``length`` tokens)."""
        return contextlib.nullcontext()

    def long_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        """A context in which ``model`` runs its long-input attention at ``length`` tokens."""
        return contextlib.nullcontext()

    def choose_attention_per_input(self, model: PreTrainedModel) -> None:
        """Have ``model`` pick its attention for every input afresh, where ``transformers`` would keep what an
        earlier input chose (BigBird); nothing for most targets."""

    def compared_module(self, model: PreTrainedModel) -> torch.nn.Module:
        """The part of a converted model that reproduces the source (an encoder-decoder's encoder)."""
        return model

    def approximation(self, model: PreTrainedModel, source_positions: int) -> list[Approximation]:
        """For targets that approximate attention: lengths (≤ ``source_positions``) and regimes at which
        verification measures what the approximation costs against the source."""
        return []

    def smoke_run(self, model: PreTrainedModel, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
        """The full-length smoke run: one forward; ``finite`` says whether the last hidden state and every
        output were finite.

        A vocabulary projection is computed for the last :data:`SMOKE_LM_POSITIONS` positions only: it
        is the same per-token product at every position (the exact checks compare it), and over all of
        a long input it costs a third of the forward (measured on roberta-base at 4096 tokens).
        """
        import torch  # not at import: the command line reads the targets before it needs torch

        with lm_head_on(model, slice(-SMOKE_LM_POSITIONS, None)) as sliced:
            outputs = model(
                **inputs, **self.extra_inputs(inputs["input_ids"], True), output_hidden_states=True, return_dict=True
            )
        values = [outputs.hidden_states[-1], *(v for v in outputs.values() if isinstance(v, torch.Tensor))]
        finite = all(torch.isfinite(v).all().item() for v in values)
        return {"finite": bool(finite), **({"lm_head_positions": SMOKE_LM_POSITIONS} if sliced else {})}

    def lm_head_activation(self, config: PretrainedConfig) -> str:
        """The activation inside this target's masked-LM head."""
        return "gelu"

    def position_parameter_name(self, model: PreTrainedModel) -> str:
        """The state-dict key of ``model``'s learned position table."""
        return under_backbone(model, self.position_key)

    def position_parameter_names(self, model: PreTrainedModel) -> list[str]:
        """Every table that ``max_position_embeddings`` sizes (``resize`` rebuilds each); one by default."""
        return [self.position_parameter_name(model)]

    # ------------------------------------------------------------------------------ training

    def input_multiple(self, config: PretrainedConfig) -> int | None:
        """What transformers pads every input of this target to a multiple of (``None``: nothing); padding
        in the collator instead keeps batches the same size in every layer."""
        return None

    def after_masked_lm_training(self, model: PreTrainedModel, *, global_tokens: bool) -> int:
        """Mend what masked-LM training left behind (``global_tokens``: it put global attention on a token of
        each block); returns how many modules were mended."""
        return 0


def under_backbone(model: PreTrainedModel, key: str) -> str:
    """``key`` (relative to the backbone) as a state-dict key of ``model``: under its backbone's prefix
    (``longformer.``, ``roberta.``…) in head models, bare in base models."""
    prefix = model.base_model_prefix
    has_backbone = bool(prefix) and getattr(model, prefix, None) is not None and model.base_model is not model
    return f"{prefix}.{key}" if has_backbone else key


def seq2seq_smoke_run(model: PreTrainedModel, inputs: dict[str, torch.Tensor]) -> dict[str, Any]:
    """An encoder-decoder's full-length smoke run: one teacher-forced loss and a short ``generate()`` (a bare
    ``…Model``: one forward, teacher-forced on the input's start)."""
    import torch  # not at import: the command line reads the targets before it needs torch

    input_ids = inputs["input_ids"]
    if not hasattr(model, "generate"):
        output = model(**inputs, decoder_input_ids=input_ids[:, :8])
        return {"finite": bool(torch.isfinite(output.last_hidden_state).all().item())}
    loss = model(**inputs, labels=input_ids[:, :8]).loss
    generated = model.generate(**inputs, max_new_tokens=4, num_beams=1, do_sample=False)
    return {
        "finite": bool(torch.isfinite(loss).item()),
        "loss": round(loss.item(), 4),
        "generated_tokens": int(generated.shape[-1]),
    }


#: How many (final) positions the smoke run's vocabulary projection computes.
SMOKE_LM_POSITIONS = 64


@contextlib.contextmanager
def lm_head_on(model: PreTrainedModel, positions: slice) -> Iterator[bool]:
    """Within the block, ``model``'s output embeddings (a masked-LM head's decoder) see only the
    ``positions`` along the sequence; yields whether the model has such a head."""
    decoder = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if decoder is None:
        yield False
        return
    handle = decoder.register_forward_pre_hook(lambda module, args: (args[0][..., positions, :], *args[1:]))
    try:
        yield True
    finally:
        handle.remove()
