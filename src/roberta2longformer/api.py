"""The original project's functions, one per target, and ``resize_longformer``: thin wrappers of the
pipeline's :func:`~.pipeline.convert` (or :func:`~.pipeline.resize`) and its verification that return
``(model, tokenizer)``. Their defaults are the targets' own option declarations."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .core.plan import Conversion
from .pipeline import convert, resize, verify_conversion
from .targets import POSITION_INIT
from .targets.bigbird import BLOCK_SIZE, NUM_RANDOM_BLOCKS
from .targets.led import CROSS_ATTENTION_INIT, DECODER_MAX_LENGTH
from .targets.longformer import ATTENTION_WINDOW
from .targets.nystromformer import CONV_KERNEL_SIZE, NUM_LANDMARKS


def _checked(
    conversion: Conversion, *, check: bool, seed: int
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """The model and tokenizer, once verification (``check``) passed: a failure raises its ToleranceError."""
    if check:
        verify_conversion(conversion, smoke=False, seed=seed).require_passed()
    return conversion.model, conversion.tokenizer


def _convert_and_check(to, model, tokenizer, max_length, *, check, dtype, allow_pickle, seed, **options):
    conversion = convert(
        model, tokenizer, to=to, max_length=max_length, dtype=dtype, allow_pickle=allow_pickle, seed=seed, **options
    )
    return _checked(conversion, check=check, seed=seed)


def convert_roberta_to_longformer(
    roberta_model: PreTrainedModel | str | Path,
    roberta_tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    longformer_max_length: int = 4096,
    *,
    attention_window: int = ATTENTION_WINDOW.default,
    position_init: str = POSITION_INIT.default,
    dtype: torch.dtype | str | None = None,
    check: bool = True,
    allow_pickle: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Convert a RoBERTa/XLM-R/CamemBERT/BERT model (object, directory or hub id) to a Longformer.

    Returns ``(model, tokenizer)``: the matching ``Longformer…`` class for the source's head
    (``RobertaForMaskedLM`` → ``LongformerForMaskedLM``, …) and a tokenizer with the same vocabulary
    and ``model_max_length=longformer_max_length``. With ``check`` (the default) the result is
    compared against the source on inputs that fit in one attention window and a
    :class:`ToleranceError` is raised if they differ by more than float error.
    """
    return _convert_and_check(
        "longformer",
        roberta_model,
        roberta_tokenizer,
        longformer_max_length,
        check=check,
        dtype=dtype,
        allow_pickle=allow_pickle,
        seed=seed,
        attention_window=attention_window,
        position_init=position_init,
    )


def convert_roberta_to_nystromformer(
    roberta_model: PreTrainedModel | str | Path,
    roberta_tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    nystromformer_max_length: int = 4096,
    *,
    num_landmarks: int = NUM_LANDMARKS.default,
    segment_means_seq_len: int | None = None,
    conv_kernel_size: int = CONV_KERNEL_SIZE.default,
    position_init: str = POSITION_INIT.default,
    dtype: torch.dtype | str | None = None,
    check: bool = True,
    allow_pickle: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Convert a RoBERTa-family model to a Nyströmformer (base, masked-LM, token classification, QA).

    The value convolution starts at zero and ``verify`` checks exactness in the exact-softmax
    regime. In its landmark regime ``transformers``' Nyströmformer only reads inputs of exactly
    ``segment_means_seq_len`` tokens (default: ``nystromformer_max_length``): pad to that length.
    """
    return _convert_and_check(
        "nystromformer",
        roberta_model,
        roberta_tokenizer,
        nystromformer_max_length,
        check=check,
        dtype=dtype,
        allow_pickle=allow_pickle,
        seed=seed,
        num_landmarks=num_landmarks,
        segment_means_seq_len=segment_means_seq_len,
        conv_kernel_size=conv_kernel_size,
        position_init=position_init,
    )


def convert_roberta_to_bigbird(
    roberta_model: PreTrainedModel | str | Path,
    roberta_tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    bigbird_max_length: int = 4096,
    *,
    block_size: int = BLOCK_SIZE.default,
    num_random_blocks: int = NUM_RANDOM_BLOCKS.default,
    position_init: str = POSITION_INIT.default,
    dtype: torch.dtype | str | None = None,
    check: bool = True,
    allow_pickle: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Convert a RoBERTa-family model to BigBird (base, masked-LM, token classification, multiple choice).

    ``bigbird_max_length`` must be a multiple of ``block_size``. On inputs of up to
    ``(5 + 2 · num_random_blocks) · block_size`` tokens BigBird uses full attention and the result
    computes what the source computed (checked with ``check``); longer inputs use block-sparse
    attention.
    """
    return _convert_and_check(
        "bigbird",
        roberta_model,
        roberta_tokenizer,
        bigbird_max_length,
        check=check,
        dtype=dtype,
        allow_pickle=allow_pickle,
        seed=seed,
        block_size=block_size,
        num_random_blocks=num_random_blocks,
        position_init=position_init,
    )


def convert_roberta_to_led(
    roberta_model: PreTrainedModel | str | Path,
    roberta_tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    led_max_length: int = 16384,
    decoder_max_length: int | None = DECODER_MAX_LENGTH.default,
    *,
    attention_window: int | list[int] = ATTENTION_WINDOW.default,
    cross_attention_init: str = CROSS_ATTENTION_INIT.default,
    position_init: str = POSITION_INIT.default,
    dtype: torch.dtype | str | None = None,
    check: bool = True,
    allow_pickle: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Warm-start an ``LEDForConditionalGeneration`` from a RoBERTa-family model or a Longformer.

    Encoder and decoder layers both start from the source's layers; the decoder's cross-attention
    starts ``"random"`` or as a copy of each layer's self-attention (``"self"``). With ``check`` the
    encoder is compared with the source on inputs that fit in one attention window, and the model
    must compute a finite loss and run ``generate()`` on a full-length input.
    """
    return _convert_and_check(
        "led",
        roberta_model,
        roberta_tokenizer,
        led_max_length,
        check=check,
        dtype=dtype,
        allow_pickle=allow_pickle,
        seed=seed,
        attention_window=attention_window,
        decoder_max_length=decoder_max_length,
        cross_attention_init=cross_attention_init,
        position_init=position_init,
    )


def extend_positions(
    model: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    max_length: int = 4096,
    *,
    position_init: str = POSITION_INIT.default,
    dtype: torch.dtype | str | None = None,
    check: bool = True,
    allow_pickle: bool = False,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Keep the source's own architecture and full attention; give it ``max_length`` positions (``--to extended``).

    The result is the source's class (``RobertaForMaskedLM`` stays ``RobertaForMaskedLM``, BART keeps its
    decoder) with a longer position table, so every tool that reads the source reads it. Attention cost
    grows with the square of the length: see the README's "Which target?" for when that is the right
    trade. With ``check`` the result must compute what the source computed on inputs of the source's length.
    """
    return _convert_and_check(
        "extended",
        model,
        tokenizer,
        max_length,
        check=check,
        dtype=dtype,
        allow_pickle=allow_pickle,
        seed=seed,
        position_init=position_init,
    )


def resize_longformer(
    model: PreTrainedModel | str | Path,
    tokenizer: PreTrainedTokenizerBase | str | Path | None = None,
    max_length: int = 8192,
    *,
    position_init: str = POSITION_INIT.default,
    check: bool = True,
    seed: int = 0,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase | None]:
    """Grow or shrink the position table of a long model (Longformer, BigBird, Nyströmformer, LED).

    Any head class; the learned rows that exist are kept. With ``check`` the result is compared
    with the original on inputs both can read and a :class:`ToleranceError` raised if they differ.
    """
    resized = resize(model, tokenizer, max_length, position_init=position_init, seed=seed)
    return _checked(resized, check=check, seed=seed)
