"""RoBERTa-family → BigBird.

What makes it equivalent to the source:

- BigBird's layers have RoBERTa's names and shapes, and its block-sparse attention uses the same
  ``query/key/value`` for local, random and global blocks, so every backbone weight has exactly
  one place. The pooler is one ``Linear`` (``pooler.weight``) instead of ``pooler.dense``.
- ``BigBirdEmbeddings`` numbers tokens ``0, 1, 2, …`` (no padding offset), so RoBERTa's learned
  rows move down by two and its offset rows are left behind; ``rescale_embeddings`` stays off.
- ``BigBirdModel`` switches itself to full attention on inputs of at most
  ``(5 + 2 · num_random_blocks) · block_size`` tokens; there it computes what the source computed.
  It does not switch back by itself, so :func:`configured_attention` restores the configured
  block-sparse attention after such a forward (``verify`` uses it).

Heads: masked-LM (BERT-style names), token classification and multiple choice carry over exactly.
BigBird's sequence-classification head applies ``hidden_act`` where RoBERTa's applies tanh, and
its QA head adds a feed-forward block and masks the question, so those two are refused.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..core.keys import Rename, kept, module_renames, rename
from ..core.vocabulary import BERT_STYLE_LM_HEAD, lm_head_activation
from ..errors import ConversionError, require_positive_int
from .base import Approximation, NewWeights, Option, Target, no_equivalent_heads
from .registry import register

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

    from .base import Config, Generator, Options, State

BLOCK_SIZE = Option("block_size", int, 64, "Tokens per attention block (--max-length must be a multiple).")
NUM_RANDOM_BLOCKS = Option("num_random_blocks", int, 3, "Random blocks each block attends to.")
#: Set on a backbone whose forward chooses its attention per input (:meth:`BigBird.choose_attention_per_input`).
_PER_INPUT = "_roberta2longformer_attention_per_input"


def full_attention_limit(config: PretrainedConfig) -> int:
    """The longest input on which ``BigBirdModel`` falls back to full attention."""
    return (5 + 2 * config.num_random_blocks) * config.block_size


@contextlib.contextmanager
def quietly_full(model: PreTrainedModel) -> Iterator[None]:
    """BigBird in its own full-attention regime on a short input, without its warning that it is
    changing attention type (once per forward: verification runs several on purpose), then back."""
    # not at import: the command line reads the targets before it needs torch
    from transformers.utils import logging as hf_logging

    bigbird_logger = hf_logging.get_logger("transformers.models.big_bird.modeling_big_bird")
    level = bigbird_logger.level
    bigbird_logger.setLevel(hf_logging.ERROR)
    try:
        with configured_attention(model):
            yield
    finally:
        bigbird_logger.setLevel(level)


@contextlib.contextmanager
def configured_attention(model: PreTrainedModel) -> Iterator[None]:
    """Run ``model`` as it is, then put it back in the attention type its config names.

    ``BigBirdModel.forward`` switches every layer to full attention on a short input and leaves it
    there, so one short forward would make later long inputs pay quadratic attention.
    """
    try:
        yield
    finally:
        model.base_model.set_attention_type(model.config.attention_type)


def _forward_with_attention_for_this_input(backbone: PreTrainedModel, *args: Any, **kwargs: Any) -> Any:
    """``BigBirdModel.forward`` after choosing afresh: full attention for an input short enough that BigBird would
    switch to it anyway (without its warning), otherwise the attention the config names. A wrapped ``forward``
    rather than a forward hook: sentence-transformers calls ``model.forward`` itself, past every hook."""
    tokens = kwargs.get("input_ids", args[0] if args else None)
    if tokens is None:
        tokens = kwargs.get("inputs_embeds")
    short = tokens is not None and tokens.shape[1] <= full_attention_limit(backbone.config)
    backbone.set_attention_type("original_full" if short else backbone.config.attention_type)
    return type(backbone).forward(backbone, *args, **kwargs)


@register
class BigBird(Target):
    name = "bigbird"
    title = "BigBird"
    config_class_name = "BigBirdConfig"
    model_type = "big_bird"
    model_class_names = {
        "base": "BigBirdModel",
        "masked_lm": "BigBirdForMaskedLM",
        "token_classification": "BigBirdForTokenClassification",
        "multiple_choice": "BigBirdForMultipleChoice",
    }
    base_prefix = "bert"
    options = (BLOCK_SIZE, NUM_RANDOM_BLOCKS)
    approximates_attention = True
    exact_where = "those on which BigBird uses full attention"
    notice = (
        "transformers' BigBirdModel switches to full attention on an input of at most "
        "(5 + 2·num_random_blocks)·block_size tokens and stays there for every later input; after short "
        "inputs call model.base_model.set_attention_type('block_sparse') before long ones."
    )
    unsupported_heads = no_equivalent_heads(
        sequence_classification="transformers' BigBird's classification head applies hidden_act where RoBERTa's applies tanh",
        question_answering="transformers' BigBird answers with an extra feed-forward block and masks the question tokens",
    )

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        return (
            rename(r"base\.pooler\.dense\.(?P<t>\w+)", rf"{prefix}pooler.\g<t>"),
            rename(r"base\.(?P<rest>.+)", rf"{prefix}\g<rest>"),
            *module_renames(BERT_STYLE_LM_HEAD),
            *kept("classifier"),
        )

    def validate(self, max_length: int, options: Mapping[str, Any]) -> None:
        block, random_blocks = options["block_size"], options["num_random_blocks"]
        require_positive_int("--block-size", block, "64 tokens")
        require_positive_int("--num-random-blocks", random_blocks, "3")  # transformers' BigBird fails with 0
        if max_length % block:
            raise ConversionError(
                f"--max-length ({max_length}) must be a multiple of --block-size ({block}), because BigBird pads "
                f"every input to whole blocks; choose e.g. {max_length - max_length % block or block}."
            )
        limit = (5 + 2 * random_blocks) * block
        if max_length <= limit:
            raise ConversionError(
                f"With --block-size {block} and --num-random-blocks {random_blocks}, BigBird uses full attention "
                f"on inputs of up to {limit} tokens, so --max-length {max_length} would never use block-sparse "
                "attention; choose a longer --max-length or a smaller --block-size."
            )
        super().validate(max_length, options)

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        return {
            "max_position_embeddings": max_length,
            "attention_type": "block_sparse",
            "block_size": options["block_size"],
            "num_random_blocks": options["num_random_blocks"],
            "use_bias": True,  # every supported source has q/k/v biases
            "rescale_embeddings": False,  # the source adds embeddings unscaled
            "sep_token_id": special.get("sep_token_id"),
        }

    def new_weights(
        self, config: Config, prefix: str, state: State, generator: Generator, options: Options
    ) -> NewWeights:
        """Every BigBird head model has a pooler; a source without one (e.g. a masked-LM) gets a fresh one.

        Only the multiple-choice head reads the pooler, and a multiple-choice source brings its own,
        so the fresh one changes no output of the converted model; it is drawn like ``transformers``
        draws it (normal, ``initializer_range``; zero bias), seeded.
        """
        import torch  # not at import: the command line reads the targets before it needs torch

        if not prefix or f"{prefix}pooler.weight" in state:
            return NewWeights({})  # base models are built without a pooler when the source has none
        size = config.hidden_size
        weight = torch.empty(size, size).normal_(0.0, config.initializer_range, generator=generator)
        tensors = {
            f"{prefix}pooler.weight": weight.to(config.dtype),
            f"{prefix}pooler.bias": torch.zeros(size, dtype=config.dtype),
        }
        note = (
            "BigBird's head models always have a pooler and the source had none, so it starts random (seeded); "
            "the converted head does not read it."
        )
        return NewWeights(tensors, (note,))

    def saved_options(self, config: PretrainedConfig) -> dict[str, Any]:
        return {"block_size": config.block_size, "num_random_blocks": config.num_random_blocks}

    def exact_length(self, config: PretrainedConfig) -> int:
        return full_attention_limit(config)

    def exact_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        return quietly_full(model)

    def long_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        return configured_attention(model)

    def choose_attention_per_input(self, model: PreTrainedModel) -> None:
        """Without this, one short input (a query, a last short batch) leaves every later long document in
        quadratic full attention: retrieval measured that way was the extended model's, not BigBird's."""
        backbone = model.base_model
        if not getattr(backbone, _PER_INPUT, False):
            backbone.forward = functools.partial(_forward_with_attention_for_this_input, backbone)
            setattr(backbone, _PER_INPUT, True)

    def approximation(self, model: PreTrainedModel, source_positions: int) -> list[Approximation]:
        """Block-sparse attention at the shortest and longest whole-block lengths the source can read."""
        config = model.config
        block = config.block_size
        shortest = (full_attention_limit(config) // block + 1) * block
        longest = source_positions // block * block
        regime = f"block-sparse, blocks of {block}, {config.num_random_blocks} random"
        return [
            Approximation(length, regime, configured_attention(model))
            for length in sorted({shortest, longest})
            if shortest <= length <= longest
        ]

    def lm_head_activation(self, config: PretrainedConfig) -> str:
        return lm_head_activation(config)
