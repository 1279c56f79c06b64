"""fairseq RoBERTa checkpoints (``model.pt``/``checkpoint*.pt`` + ``dict.txt``) as sources, without fairseq.

fairseq's RoBERTa (``TransformerSentenceEncoder``, post-LN, no token types, learned positions
numbered from ``padding_idx + 1``) is the Hugging Face ``RobertaForMaskedLM`` under other names,
so its weights are renamed (declared below) and its settings read into a ``RobertaConfig``; the
missing token-type embedding is a zero row, which adds nothing.

fairseq checkpoints are pickles. We read them only when the caller opts in (``allow_pickle``),
and even then with ``torch.load(weights_only=True)``: tensors and an ``argparse.Namespace`` of
settings are all that is accepted, so nothing in the file can run.

The vocabulary is fairseq's ``Dictionary``: ``<s> <pad> </s> <unk>``, then ``dict.txt`` in order,
then ``<mask>`` (added by the masked-LM task). Symbols that are all single characters (a protein
or character model) become a character-level tokenizer; symbols that are GPT-2 BPE ids (English
RoBERTa, GottBERT…) need the GPT-2 ``encoder.json`` and ``vocab.bpe`` next to the checkpoint and
become a byte-level BPE tokenizer with fairseq's ids.
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, RobertaConfig

from ..errors import ConversionError, is_positive_int
from .checks import known_activations
from .loading import check_floating

if TYPE_CHECKING:
    from transformers import RobertaForMaskedLM
from .keys import rename, rename_keys
from .tokenizer import roberta_tokenizer

SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
MASK = "<mask>"

_LAYER = r"(?:encoder|decoder)\.sentence_encoder\.layers\.(?P<i>\d+)\."
_TARGET_LAYER = r"roberta.encoder.layer.\g<i>."
#: fairseq names (``decoder.`` in fairseq ≤ 0.9, ``encoder.`` later) → RobertaForMaskedLM names.
FAIRSEQ_RULES = (
    rename(r"(?:encoder|decoder)\.sentence_encoder\.embed_tokens\.weight", "roberta.embeddings.word_embeddings.weight"),
    rename(
        r"(?:encoder|decoder)\.sentence_encoder\.embed_positions\.weight",
        "roberta.embeddings.position_embeddings.weight",
    ),
    rename(
        r"(?:encoder|decoder)\.sentence_encoder\.(?:emb_layer_norm|layernorm_embedding)\.(?P<t>weight|bias)",
        r"roberta.embeddings.LayerNorm.\g<t>",
    ),
    rename(_LAYER + r"self_attn\.q_proj\.(?P<t>\w+)", _TARGET_LAYER + r"attention.self.query.\g<t>"),
    rename(_LAYER + r"self_attn\.k_proj\.(?P<t>\w+)", _TARGET_LAYER + r"attention.self.key.\g<t>"),
    rename(_LAYER + r"self_attn\.v_proj\.(?P<t>\w+)", _TARGET_LAYER + r"attention.self.value.\g<t>"),
    rename(_LAYER + r"self_attn\.out_proj\.(?P<t>\w+)", _TARGET_LAYER + r"attention.output.dense.\g<t>"),
    rename(_LAYER + r"self_attn_layer_norm\.(?P<t>\w+)", _TARGET_LAYER + r"attention.output.LayerNorm.\g<t>"),
    rename(_LAYER + r"fc1\.(?P<t>\w+)", _TARGET_LAYER + r"intermediate.dense.\g<t>"),
    rename(_LAYER + r"fc2\.(?P<t>\w+)", _TARGET_LAYER + r"output.dense.\g<t>"),
    rename(_LAYER + r"final_layer_norm\.(?P<t>\w+)", _TARGET_LAYER + r"output.LayerNorm.\g<t>"),
    rename(r"(?:encoder|decoder)\.lm_head\.dense\.(?P<t>\w+)", r"lm_head.dense.\g<t>"),
    rename(r"(?:encoder|decoder)\.lm_head\.layer_norm\.(?P<t>\w+)", r"lm_head.layer_norm.\g<t>"),
    rename(r"(?:encoder|decoder)\.lm_head\.weight", "lm_head.decoder.weight"),
    rename(r"(?:encoder|decoder)\.lm_head\.bias", "lm_head.bias"),
    rename(r".*\.version|.*_float_tensor"),  # fairseq bookkeeping buffers, not weights
)


def is_fairseq_checkpoint(source: str | Path) -> bool:
    """A ``.pt`` file, or a directory with ``dict.txt`` and a ``.pt`` but no ``config.json``."""
    path = Path(str(source))
    if path.is_file():
        return path.suffix == ".pt"
    return path.is_dir() and (path / "dict.txt").is_file() and not (path / "config.json").exists()


def checkpoint_file(source: str | Path) -> Path:
    path = Path(str(source))
    if path.is_file():
        return path
    if not path.is_dir():
        raise ConversionError(f"{path} does not exist; pass a fairseq RoBERTa checkpoint (.pt) or its directory.")
    candidates = [path / "model.pt", path / "checkpoint_best.pt", *sorted(path.glob("*.pt"))]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        raise ConversionError(f"{path} holds no fairseq checkpoint (*.pt); pass the .pt file.")
    return found


def load_fairseq_roberta(
    source: str | Path, *, allow_pickle: bool = False, dictionary: str | Path | None = None
) -> tuple[RobertaForMaskedLM, PreTrainedTokenizerFast]:
    """A ``RobertaForMaskedLM`` and its tokenizer from a fairseq RoBERTa checkpoint."""
    checkpoint_path = checkpoint_file(source)
    dict_path = Path(dictionary) if dictionary else checkpoint_path.parent / "dict.txt"
    if not allow_pickle:
        raise ConversionError(
            f"{checkpoint_path} is a fairseq checkpoint, a pickle; pass --allow-pickle "
            "to read it: only its tensors and settings are read, nothing in it is run."
        )
    if not dict_path.is_file():
        raise ConversionError(
            f"The fairseq vocabulary {dict_path} is missing; put the dict.txt the model was trained with "
            "next to the checkpoint."
        )
    checkpoint = _read_checkpoint(checkpoint_path)
    args = checkpoint.get("args")
    state = checkpoint.get("model")
    _check_architecture(checkpoint_path, args, state)
    symbols = read_dictionary(dict_path)
    config = _config(args, state, len(symbols), checkpoint_path)
    model = _model(config, state, checkpoint_path)
    tokenizer = build_tokenizer(symbols, checkpoint_path.parent, config.max_position_embeddings - 2)
    return model, tokenizer


def _read_checkpoint(path: Path) -> dict:
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConversionError(
            f"Could not read {path} as a fairseq checkpoint ({first_line[:200]}); it may be truncated, "
            "or hold objects other than tensors and an argparse settings namespace."
        ) from None
    if not isinstance(checkpoint, dict) or "model" not in checkpoint:
        raise ConversionError(f"{path} is not a fairseq checkpoint (no 'model' weights in it).")
    return checkpoint


def _check_architecture(path: Path, args, state: dict) -> None:
    arch = getattr(args, "arch", None)
    if args is None or not isinstance(args, argparse.Namespace):
        raise ConversionError(
            f"{path} has no argparse settings ('args'); only fairseq RoBERTa checkpoints that store them "
            "(fairseq ≤ 0.10, e.g. GottBERT) are supported."
        )
    if not str(arch).startswith(("roberta", "xlmr")) or not any(".sentence_encoder." in k for k in state):
        raise ConversionError(
            f"{path} is a fairseq {arch!r} checkpoint, not a RoBERTa one; only fairseq RoBERTa "
            "(masked-LM) checkpoints can be imported."
        )
    if getattr(args, "encoder_normalize_before", False):
        raise ConversionError(
            f"{path} normalises before each layer (encoder_normalize_before=True), which transformers' "
            "RoBERTa cannot compute; it cannot be imported exactly."
        )


def read_dictionary(path: Path) -> list[str]:
    """fairseq's ids: the four specials, ``dict.txt`` in order (first column), then ``<mask>``."""
    symbols = list(SPECIALS)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (UnicodeDecodeError, OSError):
        raise ConversionError(f"{path} is not a text file; give the dict.txt the model was trained with.") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        symbol = line.rstrip("\n").split(" ")[0]
        if symbol in symbols:
            raise ConversionError(f"{path} line {number} repeats the symbol {symbol!r}; it is not a fairseq dict.txt.")
        symbols.append(symbol)
    if MASK not in symbols:
        symbols.append(MASK)
    return symbols


def _weight(state: dict, suffix: str, path: Path):
    found = next((v for k, v in state.items() if k.endswith(suffix)), None)
    if found is None:
        raise ConversionError(
            f"The fairseq weights in {path} have no {suffix}; this is not a complete RoBERTa checkpoint."
        )
    return found


def _config(args: argparse.Namespace, state: dict, vocab_size: int, path: Path) -> RobertaConfig:
    check_floating((k, v) for k, v in state.items() if k.endswith((".weight", ".bias")))
    embeddings = _weight(state, "sentence_encoder.embed_tokens.weight", path)
    positions = _weight(state, "sentence_encoder.embed_positions.weight", path)
    if embeddings.shape[0] != vocab_size:
        raise ConversionError(
            f"dict.txt gives {vocab_size} symbols (with fairseq's specials and <mask>) but the checkpoint "
            f"embeds {embeddings.shape[0]}; pass the dict.txt this model was trained with."
        )
    heads, activation = getattr(args, "encoder_attention_heads", None), getattr(args, "activation_fn", "gelu")
    if not is_positive_int(heads) or embeddings.shape[1] % heads:
        raise ConversionError(
            f"The settings in {path} give encoder_attention_heads={heads!r}, which does not divide the hidden size "
            f"{embeddings.shape[1]}; the checkpoint's settings do not describe its weights."
        )
    if activation not in known_activations():
        raise ConversionError(
            f"The settings in {path} give activation_fn={activation!r}, which transformers' RoBERTa does not have; "
            "it cannot be imported."
        )
    layers = {int(m[1]) for k in state if (m := re.search(r"sentence_encoder\.layers\.(\d+)\.", k))}
    return RobertaConfig(
        vocab_size=vocab_size,
        hidden_size=embeddings.shape[1],
        num_hidden_layers=len(layers),
        num_attention_heads=heads,
        intermediate_size=_weight(state, "layers.0.fc1.weight", path).shape[0],
        hidden_act=activation,
        hidden_dropout_prob=getattr(args, "dropout", 0.1),
        attention_probs_dropout_prob=getattr(args, "attention_dropout", 0.1),
        max_position_embeddings=positions.shape[0],
        type_vocab_size=1,
        layer_norm_eps=1e-5,  # fairseq's LayerNorm default
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        tie_word_embeddings=not getattr(args, "untie_weights_roberta", False),
        dtype=embeddings.dtype,
    )


def _model(config: RobertaConfig, state: dict, path: Path) -> RobertaForMaskedLM:
    weights = rename_keys(state, FAIRSEQ_RULES, what=f"fairseq ({path.name})")
    hidden = config.hidden_size
    weights["roberta.embeddings.token_type_embeddings.weight"] = torch.zeros(1, hidden, dtype=config.dtype)
    if not config.tie_word_embeddings:
        weights["lm_head.decoder.bias"] = weights["lm_head.bias"]
    elif not torch.equal(weights["lm_head.decoder.weight"], weights["roberta.embeddings.word_embeddings.weight"]):
        config.tie_word_embeddings = False  # the checkpoint's output matrix differs: keep it as it is
    from transformers import RobertaForMaskedLM  # the model classes: when a checkpoint is read, not on import

    model = RobertaForMaskedLM(config)
    missing, unexpected = model.load_state_dict(weights, strict=False)
    tied = {"lm_head.decoder.weight", "lm_head.decoder.bias"}
    if unexpected or set(missing) - tied:
        raise ConversionError(
            f"The fairseq weights in {path} do not fit a RoBERTa (missing {sorted(set(missing) - tied)[:5]}, "
            f"unexpected {unexpected[:5]}); this checkpoint layout is not supported."
        )
    model.tie_weights()
    return model.eval()


def build_tokenizer(symbols: list[str], directory: Path, max_length: int) -> PreTrainedTokenizerFast:
    """A fast tokenizer with fairseq's ids (see the module docstring for the two kinds)."""
    words = [s for s in symbols if s not in (*SPECIALS, MASK)]
    vocab = {symbol: i for i, symbol in enumerate(symbols)}
    if words and all(w.isdigit() or w.startswith("madeupword") for w in words):
        tokenizer = _gpt2_tokenizer(symbols, directory)
    elif words and all(len(w) == 1 for w in words):
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Split(Regex("."), behavior="isolated")]
        )
        tokenizer.decoder = decoders.Fuse()
    else:
        raise ConversionError(
            "dict.txt holds neither single characters nor GPT-2 BPE ids; this fairseq vocabulary is not supported."
        )
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0))
    return roberta_tokenizer(tokenizer, max_length)


def _gpt2_tokenizer(symbols: list[str], directory: Path) -> Tokenizer:
    encoder_path, merges_path = directory / "encoder.json", directory / "vocab.bpe"
    if not (encoder_path.is_file() and merges_path.is_file()):
        raise ConversionError(
            f"dict.txt lists GPT-2 BPE ids, so the GPT-2 encoder.json and vocab.bpe are needed next to the "
            f"checkpoint in {directory} (fairseq's gpt2_bpe files)."
        )
    token_of = {gpt2_id: token for token, gpt2_id in json.loads(encoder_path.read_text(encoding="utf-8")).items()}
    vocab: dict[str, int] = {}
    for fairseq_id, symbol in enumerate(symbols):
        token = token_of.get(int(symbol), symbol) if symbol.isdigit() else symbol
        vocab.setdefault(token, fairseq_id)
    merges = [
        tuple(line.split(" "))
        for line in merges_path.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#version")
    ]
    merges = [m for m in merges if len(m) == 2 and m[0] in vocab and m[1] in vocab and m[0] + m[1] in vocab]
    tokenizer = Tokenizer(models.BPE(vocab, merges, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    return tokenizer
