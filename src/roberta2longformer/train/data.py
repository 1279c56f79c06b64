"""Long documents for masked-LM pretraining: held out whole, tokenized and packed into blocks.

The documents come from :mod:`.documents`; ``datasets`` shows progress and caches the tokenized result,
so a second run with the same data and tokenizer is instant.
"""

from __future__ import annotations

import datasets
from transformers import PreTrainedTokenizerBase

from ..errors import ConversionError


def split_documents(
    documents: datasets.Dataset, fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Held-out documents (whole ones, so no text is in both); none when there is one document."""
    if not 0 <= fraction < 1:
        raise ConversionError(f"The held-out fraction must be in [0, 1), got {fraction}.")
    if fraction == 0 or len(documents) < 2:
        return documents, None
    count = max(1, round(len(documents) * fraction))
    if count >= len(documents):
        raise ConversionError(
            f"--held-out {fraction:g} of {len(documents)} documents holds out all of them and leaves none to train on; "
            "give a smaller fraction or more documents."
        )
    parts = documents.train_test_split(test_size=count, seed=seed)
    return parts["train"], parts["test"]


def pack(
    documents: datasets.Dataset, tokenizer: PreTrainedTokenizerBase, block_length: int, *, num_proc: int | None = None
) -> datasets.Dataset:
    """Blocks of exactly ``block_length`` tokens: ``<s>`` + a run of the token stream + ``</s>``.

    Documents are joined into one stream with the separator between them (a document boundary
    the model can see), so no tokens are wasted on padding; the last partial block is dropped.
    """
    start, end = tokenizer.cls_token_id, tokenizer.sep_token_id
    if start is None or end is None:
        raise ConversionError("The tokenizer has no CLS/SEP (or <s>/</s>) tokens to frame blocks with.")
    inner = block_length - 2
    if inner < 1:
        raise ConversionError(f"The block length must be at least 3 tokens, got {block_length}.")

    def tokenize(batch):
        encoded = tokenizer(batch["text"], add_special_tokens=False, return_attention_mask=False)
        return {"ids": [ids + [end] for ids in encoded["input_ids"]]}

    def blocks(batch):
        stream = [token for ids in batch["ids"] for token in ids]
        whole = len(stream) // inner * inner
        return {"input_ids": [[start, *stream[i : i + inner], end] for i in range(0, whole, inner)]}

    tokenized = documents.map(
        tokenize, batched=True, remove_columns=documents.column_names, desc="Tokenizing", num_proc=num_proc
    )
    packed = tokenized.map(
        blocks, batched=True, batch_size=1000, remove_columns=["ids"], desc=f"Packing into {block_length}-token blocks"
    )
    if len(packed) == 0:
        raise ConversionError(
            f"The data holds fewer than {block_length} tokens, not one full block; give more text or a shorter --max-length."
        )
    return packed
