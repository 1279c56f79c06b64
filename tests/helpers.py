"""Shared test helpers: tiny, seeded source models and tokenizers built in the tests (no downloads).

Imported by name (``from helpers import make_source``); ``conftest.py`` wraps them in fixtures.
"""

from __future__ import annotations

from pathlib import Path

import torch
import transformers
from tokenizers import BertWordPieceTokenizer, ByteLevelBPETokenizer

from roberta2longformer.core.tokenizer import roberta_tokenizer

CORPUS = [
    "It is a truth universally acknowledged that a long document needs a long model.",
    "The quick brown fox jumps over the lazy dog while the committee debates the library.",
    "Die Bibliothek im alten Bahnhof öffnet morgens um acht und schließt am Abend.",
    "Positions, windows and heads: every weight must find its place in the new model.",
] * 20

FAMILY_CLASSES = {
    "roberta": ("Roberta", transformers.RobertaConfig),
    "xlm-roberta": ("XLMRoberta", transformers.XLMRobertaConfig),
    "camembert": ("Camembert", transformers.CamembertConfig),
    "bert": ("Bert", transformers.BertConfig),
}
#: The source families that are not RoBERTa-shaped (other config names, no pooler, no token types…).
MORE_FAMILIES = {
    "distilbert": ("DistilBert", transformers.DistilBertConfig),
    "electra": ("Electra", transformers.ElectraConfig),
}
HEAD_SUFFIXES = {
    "base": "Model",
    "masked_lm": "ForMaskedLM",
    "sequence_classification": "ForSequenceClassification",
    "token_classification": "ForTokenClassification",
    "question_answering": "ForQuestionAnswering",
    "multiple_choice": "ForMultipleChoice",
}


def bpe_tokenizer() -> transformers.RobertaTokenizerFast:
    """A byte-level BPE tokenizer with RoBERTa's special tokens at RoBERTa's ids (0–4)."""
    trained = ByteLevelBPETokenizer()
    specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # at RoBERTa's ids
    trained.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1, special_tokens=specials)
    return roberta_tokenizer(trained._tokenizer, 32)


def wordpiece_tokenizer() -> transformers.BertTokenizerFast:
    """A WordPiece tokenizer with BERT's special tokens ([PAD] = 0)."""
    trained = BertWordPieceTokenizer(lowercase=True)
    trained.train_from_iterator(
        CORPUS,
        vocab_size=200,
        min_frequency=1,
        special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
    )
    return transformers.BertTokenizerFast(
        tokenizer_object=trained._tokenizer,
        unk_token="[UNK]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        mask_token="[MASK]",
        model_max_length=32,
    )


def tiny_config(family: str, vocab_size: int = 320, **overrides):
    """A small config; RoBERTa-style families get 32 learned positions + the offset of 2."""
    _, config_class = {**FAMILY_CLASSES, **MORE_FAMILIES}[family]
    fields = dict(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=48,
        max_position_embeddings=34 if family in ("roberta", "xlm-roberta", "camembert") else 32,
        num_labels=3,
        hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1,
    )
    if family in FAMILY_CLASSES and family != "bert":
        fields.update(pad_token_id=1, bos_token_id=0, eos_token_id=2)
    fields.update(overrides)
    if family == "electra":
        fields.setdefault("embedding_size", fields["hidden_size"])
    if family == "distilbert":  # its own names for the same sizes
        names = {"hidden_size": "dim", "num_hidden_layers": "n_layers", "num_attention_heads": "n_heads",
                 "intermediate_size": "hidden_dim", "hidden_dropout_prob": "dropout",
                 "attention_probs_dropout_prob": "attention_dropout", "hidden_act": "activation"}  # fmt: skip
        fields = {names.get(k, k): v for k, v in fields.items()}
    return config_class(**fields)


def make_source(family: str, head: str, *, seed: int = 0, vocab_size: int = 320, **overrides):
    """A seeded random source model; weights scaled up so differences cannot hide in tiny values."""
    prefix, _ = {**FAMILY_CLASSES, **MORE_FAMILIES}[family]
    config = tiny_config(family, vocab_size, **overrides)
    if head == "question_answering":
        config.num_labels = 2
    cls = getattr(transformers, prefix + HEAD_SUFFIXES[head])
    torch.manual_seed(seed)
    config.initializer_range = 0.2
    return cls(config).eval()


def save_source(directory: Path, family: str, head: str, tokenizer=None, **overrides) -> Path:
    """``make_source(family, head, **overrides)`` saved with ``save_pretrained`` (and its tokenizer) in ``directory``."""
    make_source(family, head, **overrides).save_pretrained(directory)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
    return directory


def free_port() -> int:
    """A TCP port nobody listens on now (torchrun's master port: a fixed one may be taken by another run)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
