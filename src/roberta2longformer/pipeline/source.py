"""A source opened once: resolved, its config read and checked, its head and tokenizer known.

Every command and API function that converts, resizes or verifies starts here, so a source is
resolved once and its config validated once, whatever path (streaming or in memory) follows.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.checks import checked_family
from ..core.fairseq import is_fairseq_checkpoint, load_fairseq_roberta
from ..core.families import SourceFamily, is_supported
from ..core.heads import head_for_class_name, saved_class_name
from ..core.loading import load_config, load_model, load_tokenizer
from ..core.locations import resolve_source
from ..core.plan import Request, make_request
from ..core.streaming import is_streamable
from ..errors import ConversionError
from ..io.sentence_transformers import is_sentence_transformer, max_seq_length
from ..runtime import phase
from ..targets import all_targets, get_target, target_or_none

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase


@dataclass
class OpenedSource:
    """A source model, resolved and checked: where it is, its config, family, head and tokenizer, and
    (once loaded, or when given as an object) the model itself."""

    name: str
    location: str
    config: PretrainedConfig
    #: ``None`` for a long model of ours that no family describes (a BigBird, an LED…).
    family: SourceFamily | None
    class_name: str
    tokenizer: PreTrainedTokenizerBase | None
    model: PreTrainedModel | None = None
    allow_pickle: bool = False

    @property
    def head(self) -> str:
        return head_for_class_name(self.class_name)

    @property
    def streamable(self) -> bool:
        """Its weights can be copied file to file (a directory of safetensors, not loaded yet)."""
        return self.model is None and is_streamable(self.location)

    @property
    def sentence_transformer(self) -> Path | None:
        """Its directory when it is a sentence-transformers one (``modules.json``), else ``None``."""
        path = Path(self.location)
        return path if path.is_dir() and is_sentence_transformer(path) else None

    def load(self) -> PreTrainedModel:
        """The model in memory (loaded once, from the config already read)."""
        if self.model is None:
            self.model = load_model(self.location, allow_pickle=self.allow_pickle, config=self.config)
        return self.model


def open_source(
    source: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    *,
    allow_pickle: bool = False,
    long_model: bool = False,
) -> OpenedSource:
    """Resolve ``source`` (a model object, a directory, ``builtin:NAME``, a hub id or a fairseq ``.pt``), read
    and check its config, and its tokenizer (``tokenizer`` if given, else the one saved beside it).
    ``long_model``: a long model of ours is welcome too (to resize, or to verify a resize against)."""
    phase("loading")
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(tokenizer)
    if not isinstance(source, (str, Path)):
        from transformers import PreTrainedModel  # a model object was given: its classes are loaded already

        if not isinstance(source, PreTrainedModel):
            raise ConversionError(
                f"Expected a transformers model, a directory or a hub id as the source, got {type(source).__name__}."
            )
        return _opened(getattr(source, "name_or_path", ""), "", source.config, tokenizer, long_model, model=source)
    if is_fairseq_checkpoint(source):
        model, own_tokenizer = load_fairseq_roberta(source, allow_pickle=allow_pickle)
        return _opened(str(source), str(source), model.config, tokenizer or own_tokenizer, long_model, model=model)
    location = resolve_source(source)
    config = load_config(location, allow_pickle=allow_pickle)
    if tokenizer is None:
        tokenizer = load_tokenizer(location)
    return _opened(str(source), location, config, tokenizer, long_model, allow_pickle=allow_pickle)


def _opened(name: str, location: str, config: PretrainedConfig, tokenizer, long_model: bool, **extra) -> OpenedSource:
    ours = long_model and not is_supported(config) and target_or_none(config) is not None
    family = None if ours else checked_family(config)  # the config is checked here, once
    model = extra.get("model")
    class_name = type(model).__name__ if model is not None else saved_class_name(config)
    head_for_class_name(class_name)  # a class no target can take is refused here too
    return OpenedSource(str(name), location, config, family, class_name, tokenizer, **extra)


def parse_request(
    to: str, max_length: int, dtype: torch.dtype | str | None, seed: int, options: dict[str, Any]
) -> Request:
    """The conversion asked for, checked before anything is read: an unknown target, a bad length, dtype,
    seed or option is refused in one sentence."""
    return make_request(get_target(to), max_length, dtype, seed, options)


def fit_request(request: Request, source: OpenedSource) -> Request:
    """``request`` for this source: refused if the source's family does not convert to its target; with
    ``tile-trained`` and no count, the rows a sentence-transformers source was trained (and is used) at, its
    ``max_seq_length`` (any other source: every learned row)."""
    bound = [target.for_source(source.config) for target in all_targets()]
    source.family.check_converts_to(request.target.for_source(source.config), bound)
    if source.sentence_transformer and request.target.has_fixed_input_length:
        raise ConversionError(
            f"A sentence-transformers model cannot become a {request.target.title}: it would read only inputs of "
            "exactly one length, and sentence-transformers pads each batch to its longest text; convert to "
            f"{', '.join(t.name for t in all_targets() if not t.has_fixed_input_length and not t.is_encoder_decoder)} "
            "instead, or convert the transformer alone (its AutoModel, in Python) if you need this target."
        )
    options = request.options
    if options.get("position_init") != "tile-trained" or options.get("trained_positions") is not None:
        return request
    used = max_seq_length(source.sentence_transformer) if source.sentence_transformer else None
    return dataclasses.replace(request, options={**options, "trained_positions": used})
