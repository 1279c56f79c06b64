"""Masked-LM masks: drawn afresh for training blocks, and fixed per document (seeded) for held-out text,
so that every evaluation, and every model sharing a tokenizer, scores exactly the same masked tokens."""

from __future__ import annotations

import torch
from transformers import DataCollatorForLanguageModeling, PreTrainedTokenizerBase

#: The label of a position that is not scored.
IGNORE = -100


def mask_document(
    ids: list[int], tokenizer: PreTrainedTokenizerBase, *, seed: int, document: int, probability: float = 0.15
) -> tuple[torch.Tensor, torch.Tensor]:
    """(masked ids, labels) for one document: 15 % of its tokens, 80/10/10 mask/random/kept.

    Drawn from a generator seeded by ``seed`` and the document's index only, so the same document
    gets the same masks in every model and every run.
    """
    generator = torch.Generator().manual_seed(seed * 1_000_003 + document)
    tokens = torch.tensor(ids, dtype=torch.long)
    chosen = torch.rand(len(ids), generator=generator) < probability
    labels = torch.where(chosen, tokens, torch.full_like(tokens, IGNORE))
    roll = torch.rand(len(ids), generator=generator)
    random_ids = torch.randint(len(tokenizer), (len(ids),), generator=generator)
    masked = tokens.clone()
    masked[chosen & (roll < 0.8)] = tokenizer.mask_token_id
    replace = chosen & (roll >= 0.8) & (roll < 0.9)
    masked[replace] = random_ids[replace]
    return masked, labels


def with_fixed_masks(blocks, tokenizer, seed: int):
    """Held-out blocks with their masks drawn once, as :func:`mask_document` draws a document's (seeded by
    the seed and the block's index), never the block's first and last token, and at least one token per block."""

    def mask(row, index):
        inner, labels = mask_document(row["input_ids"][1:-1], tokenizer, seed=seed, document=index)
        if (labels == IGNORE).all():  # a short block may draw no mask: its loss would be 0/0
            labels[0], inner[0] = inner[0], tokenizer.mask_token_id
        ids = [row["input_ids"][0], *inner.tolist(), row["input_ids"][-1]]
        return {"input_ids": ids, "labels": [IGNORE, *labels.tolist(), IGNORE]}

    return blocks.map(mask, with_indices=True, desc="Drawing the held-out masks")


class MaskedBlocks:
    """Masked-LM batches of equal-length blocks: masks drawn afresh for training blocks, the fixed ones of
    :func:`with_fixed_masks` for held-out blocks, and the extra inputs the model's target asks for
    (``extra_inputs``: a Longformer's global attention on each block's first token, when asked)."""

    def __init__(self, tokenizer, mlm_probability: float, *, extra_inputs=None) -> None:
        self.draw = DataCollatorForLanguageModeling(tokenizer, mlm=True, mlm_probability=mlm_probability)
        self.extra_inputs = extra_inputs

    def __call__(self, examples):
        if "labels" in examples[0]:
            batch = {key: torch.tensor([example[key] for example in examples]) for key in ("input_ids", "labels")}
        else:
            batch = self.draw(examples)
        if self.extra_inputs is not None:
            batch.update(self.extra_inputs(batch["input_ids"]))
        return batch
