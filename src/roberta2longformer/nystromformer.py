"""RoBERTa-family → Nyströmformer, declared on the shared core.

What makes it equivalent to the source:

- ``NystromformerEmbeddings`` numbers tokens ``arange + 2`` whatever the padding, so token ``i``
  reads row ``i + 2``: the learned rows go behind two offset rows, exactly where RoBERTa keeps
  them (BERT's rows move up by two).
- The depthwise convolution on the values that ``transformers`` adds to every layer
  (``conv_kernel_size``, default 65; ``None`` is rejected by transformers 5 configs) starts at
  zero, so it adds nothing until training grows it.
- With ``num_landmarks == segment_means_seq_len`` attention is the exact softmax; ``verify`` uses
  that regime for the exactness checks and reports separately what the landmark (Nyström)
  approximation costs.

A limit of ``transformers``' Nyströmformer that users must know: in the landmark regime it only
works on inputs of exactly ``segment_means_seq_len`` tokens (other lengths reshape wrongly or
fail), so pad every input to that length (``padding="max_length"``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import transformers
from transformers import PretrainedConfig, PreTrainedModel

from .errors import ConversionError, is_positive_int, require_positive_int
from .positions import check_position_init
from .registry import Approximation, NewWeights, TargetSpec, no_equivalent_head, register
from .sources import BERT_STYLE_LM_HEAD, lm_head_activation, module_renames
from .weights import Rename, rename

#: ``NystromformerEmbeddings`` reads row ``i + 2`` for token ``i``.
NYSTROM_POSITION_OFFSET = 2

PAD_TO_SEGMENT_LENGTH = (
    "transformers' Nyströmformer only works on inputs of exactly segment_means_seq_len tokens in "
    "its landmark regime: pad every input to that length (padding='max_length')."
)


def _key_rules(prefix: str) -> tuple[Rename, ...]:
    return (
        rename(r"base\.pooler\..+"),  # Nyströmformer has no pooler: dropped, and said so
        rename(r"base\.(?P<rest>.+)", rf"{prefix}\g<rest>"),
        *module_renames(BERT_STYLE_LM_HEAD),
        rename(r"(?P<k>(?:classifier|qa_outputs)\..+)", r"\g<k>"),
    )


def _segment_length(max_length: int, options: Mapping[str, Any]) -> int:
    return options["segment_means_seq_len"] or max_length


def _validate(max_length: int, options: Mapping[str, Any]) -> None:
    landmarks = options["num_landmarks"]
    require_positive_int("num_landmarks", landmarks, "64")
    segment = _segment_length(max_length, options)
    if not is_positive_int(segment) or segment > max_length:
        raise ConversionError(
            f"segment_means_seq_len must be a positive number of tokens no larger than max_length "
            f"({max_length}), got {segment!r}."
        )
    if segment % landmarks:
        raise ConversionError(
            f"The input length {segment} (segment_means_seq_len, default max_length) must be a multiple "
            f"of num_landmarks ({landmarks}); choose e.g. {segment - segment % landmarks or landmarks}."
        )
    kernel = options["conv_kernel_size"]
    if not is_positive_int(kernel) or kernel % 2 == 0:
        raise ConversionError(f"conv_kernel_size must be a positive odd number (e.g. 65), got {kernel!r}.")
    check_position_init(options["position_init"])


def _config_overrides(
    source: PretrainedConfig, max_length: int, options: Mapping[str, Any], special: Mapping[str, Any]
) -> dict:
    return {
        "max_position_embeddings": max_length,
        "num_landmarks": options["num_landmarks"],
        "segment_means_seq_len": _segment_length(max_length, options),
        "conv_kernel_size": options["conv_kernel_size"],
    }


def _saved_options(config: PretrainedConfig) -> dict[str, Any]:
    return {
        "num_landmarks": config.num_landmarks,
        "segment_means_seq_len": config.segment_means_seq_len,
        "conv_kernel_size": config.conv_kernel_size,
    }


def _resize_fields(config: PretrainedConfig, max_length: int) -> dict[str, Any]:
    """A model that read whole max-length inputs keeps doing so; a shorter segment length stays."""
    segment = config.segment_means_seq_len
    return {
        "max_position_embeddings": max_length,
        "segment_means_seq_len": max_length if segment == config.max_position_embeddings else segment,
    }


def _zero_convolutions(config: PretrainedConfig, prefix: str, state, generator, options) -> NewWeights:
    """The value convolution of every layer, zero so the layer computes what the source's did."""
    shape = (config.num_attention_heads, 1, config.conv_kernel_size, 1)
    return NewWeights({
        f"{prefix}encoder.layer.{i}.attention.self.conv.weight": torch.zeros(shape, dtype=config.dtype)
        for i in range(config.num_hidden_layers)
    })


def _attention_modules(model: PreTrainedModel) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "NystromformerSelfAttention"]


@contextlib.contextmanager
def attention_regime(model: PreTrainedModel, length: int, landmarks: int | None = None) -> Iterator[None]:
    """Temporarily make every layer read ``length`` tokens with ``landmarks`` landmarks.

    ``landmarks=None`` (or ``== length``) is the exact-softmax regime. The weights do not depend on
    either number, so this changes how attention is computed, not what was learned.
    """
    modules = _attention_modules(model)
    saved = [(m.num_landmarks, m.seq_len) for m in modules]
    try:
        for m in modules:
            m.num_landmarks, m.seq_len = landmarks or length, length
        yield
    finally:
        for m, (landmarks_before, length_before) in zip(modules, saved):
            m.num_landmarks, m.seq_len = landmarks_before, length_before


def landmark_regimes(model: PreTrainedModel, source_positions: int) -> list[Approximation]:
    """The landmark regime at up to three lengths the source can read (multiples of the landmarks).

    At each length every layer uses the configured landmarks over that many tokens: the model's
    own regime, scaled down so that the source can be compared with it.
    """
    landmarks = model.config.num_landmarks
    longest = source_positions // landmarks * landmarks
    lengths = sorted(
        {n for n in (longest, longest // 2 // landmarks * landmarks, 2 * landmarks) if landmarks < n <= longest}
    )
    return [
        Approximation(length, f"{landmarks} landmarks", attention_regime(model, length, landmarks))
        for length in lengths
    ]


NYSTROMFORMER = register(
    TargetSpec(
        name="nystromformer",
        config_class=transformers.NystromformerConfig,
        model_classes={
            "base": transformers.NystromformerModel,
            "masked_lm": transformers.NystromformerForMaskedLM,
            "token_classification": transformers.NystromformerForTokenClassification,
            "question_answering": transformers.NystromformerForQuestionAnswering,
        },
        base_prefix="nystromformer",
        key_rules=_key_rules,
        position_offset=lambda config: NYSTROM_POSITION_OFFSET,
        config_overrides=_config_overrides,
        validate=_validate,
        exact_length=lambda config: None,  # exact at any length in the exact-softmax regime
        default_options={
            "num_landmarks": 64,
            "segment_means_seq_len": None,
            "conv_kernel_size": 65,
            "position_init": "tile",
        },
        max_length=lambda config: config.max_position_embeddings,
        new_weights=_zero_convolutions,
        saved_options=_saved_options,
        resize_fields=_resize_fields,
        lm_head_activation=lm_head_activation,
        exact_mode=lambda model, length: attention_regime(model, length),
        smoke_length=lambda config: config.segment_means_seq_len,
        approximation=landmark_regimes,
        notice=PAD_TO_SEGMENT_LENGTH,
        exact_where="in the exact-softmax regime, landmarks = input length",
        unsupported_heads={
            "sequence_classification": no_equivalent_head(
                "transformers' Nyströmformer's classification head applies hidden_act where RoBERTa's applies tanh",
                "sequence-classification",
            ),
            "multiple_choice": no_equivalent_head(
                "transformers' Nyströmformer scores choices with a ReLU pre-classifier instead of a tanh pooler",
                "multiple-choice",
            ),
        },
    )
)
