"""The converted model's tokenizer: same vocabulary, the new ``model_max_length``."""

from __future__ import annotations

import tempfile
from typing import Any

from transformers import (
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
    RobertaTokenizerFast,
)

from ..errors import ConversionError

#: RoBERTa's special tokens, by role (fairseq's <s> <pad> </s> <unk> at ids 0-3, <mask> last).
ROBERTA_SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "cls_token": "<s>",
    "unk_token": "<unk>",
    "pad_token": "<pad>",
    "mask_token": "<mask>",
}


#: Arguments transformers records in a loaded tokenizer's ``init_kwargs`` that describe the loading, which
#: ``save_pretrained`` would otherwise write into ``tokenizer_config.json``.
LOADING_ARGUMENTS = ("is_local", "local_files_only", "_commit_hash", "name_or_path")


def roberta_tokenizer(tokenizer_object: Any, model_max_length: int) -> PreTrainedTokenizerFast:
    """A ``RobertaTokenizerFast`` over a ``tokenizers.Tokenizer`` with RoBERTa's special tokens."""
    return RobertaTokenizerFast(
        tokenizer_object=tokenizer_object, model_max_length=model_max_length, **ROBERTA_SPECIAL_TOKENS
    )


def first_defined(*values):
    """The first value that is not ``None`` (token ids may be 0, so ``or`` will not do)."""
    return next((value for value in values if value is not None), None)


def check_tokenizer_matches(tokenizer: PreTrainedTokenizerBase, config: PretrainedConfig) -> None:
    """Refuse a tokenizer that would produce ids the model cannot embed, or pad with another id."""
    if len(tokenizer) > config.vocab_size:
        raise ConversionError(
            f"The tokenizer has {len(tokenizer)} tokens but the model's vocabulary has "
            f"{config.vocab_size}; pass the tokenizer that was saved with this model."
        )
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != config.pad_token_id:
        raise ConversionError(
            f"The tokenizer pads with id {tokenizer.pad_token_id} but the model's pad_token_id is "
            f"{config.pad_token_id}; pass the tokenizer that was saved with this model."
        )


def _is_byte_level_bpe(tokenizer: PreTrainedTokenizerBase) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return False
    return type(backend.model).__name__ == "BPE" and type(backend.pre_tokenizer).__name__ == "ByteLevel"


def convert_tokenizer(
    tokenizer: PreTrainedTokenizerBase, max_length: int, byte_level_class: type | None
) -> PreTrainedTokenizerBase:
    """A new tokenizer for the long model; the caller's object is left untouched.

    It is written and read back (a fresh object, and proof it round-trips), as
    ``byte_level_class`` for byte-level BPE vocabularies (RoBERTa's; ``LongformerTokenizerFast``
    for Longformer) and as the source's own class otherwise (XLM-R/CamemBERT SentencePiece, BERT
    WordPiece).
    """
    loader = byte_level_class if byte_level_class and _is_byte_level_bpe(tokenizer) else AutoTokenizer
    with tempfile.TemporaryDirectory(prefix="r2l-tokenizer-") as tmp:
        tokenizer.save_pretrained(tmp)
        converted = loader.from_pretrained(tmp, model_max_length=max_length)
    converted.model_max_length = max_length
    converted.init_kwargs["model_max_length"] = max_length
    for loading_only in LOADING_ARGUMENTS:  # how this process read it, not part of the tokenizer
        converted.init_kwargs.pop(loading_only, None)
    return converted
