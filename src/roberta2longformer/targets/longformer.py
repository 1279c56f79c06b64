"""RoBERTa-family → Longformer.

Longformer *is* RoBERTa with sliding-window self-attention plus separate projections for global
tokens, so every weight has a place: the global ``query/key/value`` start as copies of the local
ones, and on inputs short enough to fit in one window (``attention_window / 2 + 1`` tokens) the
model computes exactly what its source computed, global tokens or not. Longformer numbers
positions like RoBERTa (``pad_token_id + 1`` onwards), so the offset rows carry over as they are.

The window helpers here are shared with LED, whose encoder layers are Longformer layers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..core.keys import Rename, kept, rename
from ..core.positions import roberta_position_offset
from ..errors import ConversionError, is_positive_int
from .base import Option, Target
from .registry import register

if TYPE_CHECKING:
    import torch
    from transformers import PretrainedConfig, PreTrainedModel

    from .base import Config, Options

ATTENTION_WINDOW = Option("attention_window", int, 512, "Tokens each token attends to (even; half on each side).")


def attention_windows(window: int | list[int] | tuple[int, ...]) -> list[int]:
    """Validated per-layer windows: one even number of tokens, or one per layer."""
    windows = list(window) if isinstance(window, (list, tuple)) else [window]
    if not windows or not all(is_positive_int(w) and w % 2 == 0 for w in windows):
        raise ConversionError(
            f"--attention-window must be a positive even number of tokens (e.g. 512), got {window!r}."
        )
    return windows


def check_window_fits(windows: list[int], max_length: int) -> None:
    """A window wider than the longest input attends to padding only; it is a mistyped option."""
    if max_length < 2:
        raise ConversionError(f"--max-length must be at least 2 tokens (one window of 2), got {max_length}.")
    if max(windows) > max_length:
        raise ConversionError(
            f"--attention-window ({max(windows)}) is larger than --max-length ({max_length}): no input is that long; "
            f"choose a window of at most {max_length - max_length % 2} tokens (512 is usual), or a longer --max-length."
        )


def check_window_count(windows: list[int], layers: int) -> None:
    if len(windows) > 1 and len(windows) != layers:
        raise ConversionError(
            f"--attention-window has {len(windows)} values but the source has {layers} layers; "
            "give one value, or one per layer."
        )


def per_layer_windows(window: int | list[int] | tuple[int, ...], layers: int) -> list[int]:
    """One window per layer, as ``LongformerModel`` and ``LEDModel`` store it in their config when built
    (so a config written without building the model is the one ``save_pretrained`` writes)."""
    windows = attention_windows(window)
    check_window_count(windows, layers)
    return windows if len(windows) > 1 else windows * layers


def one_window(config: PretrainedConfig) -> int:
    """Inputs up to this length fit in every layer's window, so attention is full attention."""
    window = config.attention_window
    window = min(window) if isinstance(window, (list, tuple)) else window
    return window // 2 + 1


def window_multiple(config: PretrainedConfig) -> int:
    """transformers' Longformer layers pad every input to a multiple of the widest window."""
    windows = config.attention_window
    return max(windows) if isinstance(windows, (list, tuple)) else int(windows)


def recopy_global_projections(model: PreTrainedModel) -> int:
    """Copy each Longformer layer's local q/k/v into its global ones; returns the layers done."""
    import torch  # not at import: the command line reads the targets before it needs torch

    done = 0
    with torch.no_grad():
        for module in model.modules():
            if all(hasattr(module, name) for name in ("query", "query_global", "key_global", "value_global")):
                for name in ("query", "key", "value"):
                    getattr(module, f"{name}_global").load_state_dict(getattr(module, name).state_dict())
                done += 1
    return done


def global_first_token(input_ids: torch.Tensor, global_first: bool) -> dict[str, torch.Tensor]:
    """A ``global_attention_mask`` with the first token global (when asked) and no other."""
    import torch  # not at import: the command line reads the targets before it needs torch

    mask = torch.zeros_like(input_ids)
    if global_first:
        mask[..., 0] = 1
    return {"global_attention_mask": mask}


@register
class Longformer(Target):
    name = "longformer"
    title = "Longformer"
    config_class_name = "LongformerConfig"
    model_type = "longformer"
    model_class_names = {
        "base": "LongformerModel",
        "masked_lm": "LongformerForMaskedLM",
        "sequence_classification": "LongformerForSequenceClassification",
        "token_classification": "LongformerForTokenClassification",
        "question_answering": "LongformerForQuestionAnswering",
        "multiple_choice": "LongformerForMultipleChoice",
    }
    base_prefix = "longformer"
    byte_level_tokenizer_name = "LongformerTokenizerFast"
    options = (ATTENTION_WINDOW,)
    uses_global_tokens = True
    has_fast_attention = True
    exact_where = "those that fit in one attention window"

    def key_rules(self, prefix: str) -> tuple[Rename, ...]:
        return (
            rename(
                r"base\.encoder\.layer\.(?P<i>\d+)\.attention\.self\.(?P<p>query|key|value)\.(?P<t>\w+)",
                rf"{prefix}encoder.layer.\g<i>.attention.self.\g<p>.\g<t>",
                rf"{prefix}encoder.layer.\g<i>.attention.self.\g<p>_global.\g<t>",
            ),
            rename(r"base\.(?P<rest>.+)", rf"{prefix}\g<rest>"),
            *kept("lm_head", "classifier", "qa_outputs"),
        )

    def position_offset(self, config: PretrainedConfig) -> int:
        return roberta_position_offset(config.pad_token_id)

    def validate(self, max_length: int, options: Mapping[str, Any]) -> None:
        check_window_fits(attention_windows(options["attention_window"]), max_length)
        super().validate(max_length, options)

    def config_overrides(self, source: Config, max_length: int, options: Options, special: Options) -> dict[str, Any]:
        return {
            "max_position_embeddings": max_length + roberta_position_offset(source.pad_token_id),
            "attention_window": per_layer_windows(options["attention_window"], source.num_hidden_layers),
            "sep_token_id": special.get("sep_token_id"),
        }

    def max_length(self, config: PretrainedConfig) -> int:
        return config.max_position_embeddings - roberta_position_offset(config.pad_token_id)

    def saved_options(self, config: PretrainedConfig) -> dict[str, Any]:
        return {"attention_window": config.attention_window}

    def resize_fields(self, config: PretrainedConfig, max_length: int) -> dict[str, Any]:
        return {"max_position_embeddings": max_length + roberta_position_offset(config.pad_token_id)}

    def exact_length(self, config: PretrainedConfig) -> int:
        return one_window(config)

    def extra_inputs(self, input_ids: torch.Tensor, global_first: bool) -> dict[str, torch.Tensor]:
        return global_first_token(input_ids, global_first)

    def input_multiple(self, config: PretrainedConfig) -> int:
        return window_multiple(config)

    def after_masked_lm_training(self, model: PreTrainedModel, *, global_tokens: bool) -> int:
        """Masked-LM training without global tokens never updates the global projections: they are copied
        again from the trained local ones (with global tokens they were trained themselves)."""
        return 0 if global_tokens else recopy_global_projections(model)
