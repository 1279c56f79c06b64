"""Masked-LM loss and bits per character (BPC) on held-out long documents.

Every model reads each document in windows of its own length (a 512-token source in 512-token
windows, a 4096-token Longformer in 4096-token windows; a Nyströmformer's windows are padded to
its segment length and read without a padding mask, which transformers' Nyströmformer cannot apply
in its landmark regime). The masks are drawn per document from the seed, so models that share a
tokenizer are scored on exactly the same masked tokens.

BPC = (mean masked-token loss in bits) / (characters per token), the characters per token of the
evaluated documents under the model's tokenizer: bits per character of the text the masked
tokens stand for, comparable across tokenizers.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..errors import ConversionError
from ..fast import backend_name
from ..targets import input_length, target_or_none
from .masking import IGNORE, mask_document


@dataclass
class Evaluation:
    model: str
    window: int
    documents: int
    tokens: int
    characters: int
    masked: int
    loss: float
    bpc: float
    #: What computed the attention (``roberta2longformer.fast`` or ``transformers``).
    attention: str = "transformers"

    def to_dict(self) -> dict:
        return asdict(self)


def _windows(masked: torch.Tensor, labels: torch.Tensor, inner: int, start: int, end: int):
    for offset in range(0, len(masked), inner):
        ids = torch.cat([torch.tensor([start]), masked[offset : offset + inner], torch.tensor([end])])
        lab = torch.cat([torch.tensor([IGNORE]), labels[offset : offset + inner], torch.tensor([IGNORE])])
        yield ids, lab


def _batches(windows: list[tuple[torch.Tensor, torch.Tensor]], size: int, pad: int, width: int | None):
    for i in range(0, len(windows), size):
        chunk = windows[i : i + size]
        length = width or max(len(ids) for ids, _ in chunk)
        input_ids = torch.full((len(chunk), length), pad, dtype=torch.long)
        labels = torch.full((len(chunk), length), IGNORE, dtype=torch.long)
        attention = torch.zeros((len(chunk), length), dtype=torch.long)
        for row, (ids, lab) in enumerate(chunk):
            input_ids[row, : len(ids)], labels[row, : len(lab)], attention[row, : len(ids)] = ids, lab, 1
        yield input_ids, attention, labels


@torch.inference_mode()
def evaluate(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    *,
    seed: int = 0,
    window: int | None = None,
    batch_size: int = 4,
    name: str = "",
) -> Evaluation:
    """Masked-LM loss (nats per masked token) and BPC of ``model`` on ``texts``."""
    if not texts:
        raise ConversionError("No documents to evaluate; give files with text in them.")
    if tokenizer.mask_token_id is None:
        raise ConversionError("The tokenizer has no mask token, so masked-LM loss cannot be measured.")
    longest = input_length(model.config)
    window = window or longest
    if window > longest or window < 3:
        raise ConversionError(f"The window must be between 3 and the model's {longest} tokens, got {window}.")
    target = target_or_none(model.config)
    fixed_length = target is not None and target.has_fixed_input_length
    model.eval()
    total_loss, masked_count, tokens, characters = 0.0, 0, 0, 0
    shown = tqdm(texts, desc=f"Evaluating {name or type(model).__name__}", unit="document", leave=False)
    for index, text in enumerate(shown):
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        tokens, characters = tokens + len(ids), characters + len(text)
        masked, labels = mask_document(ids, tokenizer, seed=seed, document=index)
        windows = list(_windows(masked, labels, window - 2, tokenizer.cls_token_id, tokenizer.sep_token_id))
        width = longest if fixed_length else None  # transformers' Nyströmformer reads exactly that length
        for input_ids, attention, batch_labels in _batches(windows, batch_size, tokenizer.pad_token_id, width):
            # transformers' Nyströmformer fails on a padding mask in its landmark regime (the mask
            # has the input's length, the landmark scores do not), so its padded last window of a
            # document is read without a mask: the padding is attended there, as in that model.
            mask = None if fixed_length else attention
            logits = model(input_ids=input_ids, attention_mask=mask).logits.float()
            where = batch_labels != IGNORE
            log_probs = logits[where].log_softmax(-1)
            total_loss -= log_probs.gather(-1, batch_labels[where].unsqueeze(-1)).sum().item()
            masked_count += int(where.sum())
    if masked_count == 0:
        raise ConversionError("The documents are too short to mask any token; give longer documents.")
    loss = total_loss / masked_count
    if not math.isfinite(loss):
        raise ConversionError(
            f"The masked-LM loss of {name or type(model).__name__} is {loss}, not a number a model can score: its "
            "weights hold NaN or infinite values, so no result is reported."
        )
    return Evaluation(
        model=name or type(model).__name__,
        window=window,
        documents=len(texts),
        tokens=tokens,
        characters=characters,
        masked=masked_count,
        loss=loss,
        bpc=loss / math.log(2) / (characters / tokens),
        attention=backend_name(model),
    )


def format_table(results: list[Evaluation]) -> str:
    header = f"{'model':<40} {'window':>6} {'docs':>5} {'tokens':>9} {'chars':>10} {'masked':>8} {'loss':>7} {'BPC':>7}"
    rows = [
        f"{r.model[-40:]:<40} {r.window:>6} {r.documents:>5} {r.tokens:>9,} {r.characters:>10,} {r.masked:>8,} "
        f"{r.loss:>7.4f} {r.bpc:>7.4f}"
        for r in results
    ]
    return "\n".join([header, *rows])
