"""RoBERTa-family → Nyströmformer.

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
from typing import TYPE_CHECKING, Any

from ..core.keys import Rename, kept, module_renames, rename
from ..core.vocabulary import BERT_STYLE_LM_HEAD, lm_head_activation
from ..errors import ConversionError, is_positive_int, require_positive_int
from .base import Approximation, NewWeights, Option, Target, no_equivalent_heads
from .registry import register

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

    from .base import Config, Generator, Options, State

NUM_LANDMARKS = Option("num_landmarks", int, 64, "Landmarks per layer.")
SEGMENT_LENGTH = Option(
    "segment_means_seq_len",
    int,
    None,
    "The input length the model reads (segment_means_seq_len); inputs must be padded to it.",
    flag="segment_length",
    default_text="--max-length",
)
CONV_KERNEL_SIZE = Option("conv_kernel_size", int, 65, "Kernel of the value convolution, which starts at zero (odd).")

#: ``NystromformerEmbeddings`` reads row ``i + 2`` for token ``i``.
NYSTROM_POSITION_OFFSET = 2


def _segment_length(max_length: int, options: Mapping[str, Any]) -> int:
    given = options["segment_means_seq_len"]
    return max_length if given is None else given


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


@register
class Nystromformer(Target):
    name = "nystromformer"
    title = "Nyströmformer"
    config_class_name = "NystromformerConfig"
    model_type = "nystromformer"
    model_class_names = {
        "base": "NystromformerModel",
        "masked_lm": "NystromformerForMaskedLM",
        "token_classification": "NystromformerForTokenClassification",
        "question_answering": "NystromformerForQuestionAnswering",
    }
    base_prefix = "nystromformer"
    options = (NUM_LANDMARKS, SEGMENT_LENGTH, CONV_KERNEL_SIZE)
    has_fixed_input_length = True
    approximates_attention = True
    exact_where = "in the exact-softmax regime, landmarks = input length"
    notice = (
        "transformers' Nyströmformer only works on inputs of exactly segment_means_seq_len tokens in "
        "its landmark regime: pad every input to that length (padding='max_length') and pass no attention_mask "
        "(its landmark attention cannot apply one; the padding is then attended, as evaluate does)."
    )

    def usage_notes(self, config: PretrainedConfig) -> list[str]:
        length = config.segment_means_seq_len
        return [
            f"transformers' Nyströmformer only works on inputs of exactly {length} tokens (segment_means_seq_len) in "
            f"its landmark regime: pad every input to {length} tokens (padding='max_length', max_length={length}) "
            "and pass no attention_mask (its landmark attention cannot apply one; the padding is then attended, as "
            "evaluate does)."
        ]

    unsupported_heads = no_equivalent_heads(
        sequence_classification="transformers' Nyströmformer's classification head applies hidden_act where RoBERTa's applies tanh",
        multiple_choice="transformers' Nyströmformer scores choices with a ReLU pre-classifier instead of a tanh pooler",
    )

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        return (
            rename(r"base\.pooler\..+"),  # Nyströmformer has no pooler: dropped, and said so
            rename(r"base\.(?P<rest>.+)", rf"{prefix}\g<rest>"),
            *module_renames(BERT_STYLE_LM_HEAD),
            *kept("classifier", "qa_outputs"),
        )

    def position_offset(self, config: PretrainedConfig) -> int:
        return NYSTROM_POSITION_OFFSET

    def validate(self, max_length: int, options: Mapping[str, Any]) -> None:
        landmarks = options["num_landmarks"]
        require_positive_int("--num-landmarks", landmarks, "64")
        segment = _segment_length(max_length, options)
        if not is_positive_int(segment) or segment > max_length:
            raise ConversionError(
                f"--segment-length must be a positive number of tokens no larger than --max-length "
                f"({max_length}), got {segment!r}."
            )
        if segment % landmarks:
            raise ConversionError(
                f"The input length {segment} (--segment-length, default --max-length) must be a multiple "
                f"of --num-landmarks ({landmarks}); choose e.g. {segment - segment % landmarks or landmarks}."
            )
        kernel = options["conv_kernel_size"]
        if not is_positive_int(kernel) or kernel % 2 == 0:
            raise ConversionError(f"--conv-kernel-size must be a positive odd number (e.g. 65), got {kernel!r}.")
        super().validate(max_length, options)

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        return {
            "max_position_embeddings": max_length,
            "num_landmarks": options["num_landmarks"],
            "segment_means_seq_len": _segment_length(max_length, options),
            "conv_kernel_size": options["conv_kernel_size"],
        }

    def new_weights(
        self, config: Config, prefix: str, state: State, generator: Generator, options: Options
    ) -> NewWeights:
        """The value convolution of every layer, zero so the layer computes what the source's did."""
        import torch  # not at import: the command line reads the targets before it needs torch

        shape = (config.num_attention_heads, 1, config.conv_kernel_size, 1)
        return NewWeights(
            {
                f"{prefix}encoder.layer.{i}.attention.self.conv.weight": torch.zeros(shape, dtype=config.dtype)
                for i in range(config.num_hidden_layers)
            }
        )

    def input_length(self, config: PretrainedConfig) -> int:
        return config.segment_means_seq_len

    def saved_options(self, config: PretrainedConfig) -> dict[str, Any]:
        return {
            "num_landmarks": config.num_landmarks,
            "segment_means_seq_len": config.segment_means_seq_len,
            "conv_kernel_size": config.conv_kernel_size,
        }

    def resize_fields(self, config: PretrainedConfig, max_length: int) -> dict[str, Any]:
        """A model that read whole max-length inputs keeps doing so; a shorter segment length stays."""
        segment = config.segment_means_seq_len
        return {
            "max_position_embeddings": max_length,
            "segment_means_seq_len": max_length if segment == config.max_position_embeddings else segment,
        }

    def exact_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        return attention_regime(model, length)

    def long_mode(self, model: PreTrainedModel, length: int) -> contextlib.AbstractContextManager:
        return attention_regime(model, length, model.config.num_landmarks)

    def approximation(self, model: PreTrainedModel, source_positions: int) -> list[Approximation]:
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

    def lm_head_activation(self, config: PretrainedConfig) -> str:
        return lm_head_activation(config)
