"""A sentence-transformers directory as a source: its transformer is converted like any other
source, and every other module (pooling, dense, normalize) is carried into the output beside it,
so that ``SentenceTransformer(OUT)`` loads the long model with the source's pooling and
normalisation, and ``AutoModel.from_pretrained(OUT)`` the transformer alone.

The layout is sentence-transformers' own (``modules.json`` naming each module's type and folder,
the transformer at the root with ``sentence_bert_config.json``); module folders are copied as
files, never loaded here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ..errors import ConversionError

MODULES = "modules.json"
#: Module types carried as they are: none of them depends on the input length.
CARRIED = ("Pooling", "Dense", "Normalize", "LayerNorm", "Dropout")
TRANSFORMER = "Transformer"
#: Files of the root that describe the sentence-transformers model (beside the transformer's own).
ROOT_FILES = ("modules.json", "config_sentence_transformers.json")


def is_sentence_transformer(directory: str | Path) -> bool:
    return (Path(directory) / MODULES).is_file()


#: Files that unpickle (and so can run code) when a module is loaded.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle")


def modules(directory: str | Path, *, allow_pickle: bool = False) -> list[dict[str, Any]]:
    """The module list, after refusing layouts we cannot carry and, without ``allow_pickle``, a module stored as a
    pickle (one sentence each)."""
    path = Path(directory) / MODULES
    try:
        listed = json.loads(path.read_text(encoding="utf-8"))
        kinds = [(m["type"].rsplit(".", 1)[-1], m.get("path", "")) for m in listed]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ConversionError(
            f"{path} is not a sentence-transformers module list; re-save the model with save()."
        ) from None
    transformers_at = [where for kind, where in kinds if kind == TRANSFORMER]
    if transformers_at != [""]:
        raise ConversionError(
            f"{path} names {'no' if not transformers_at else len(transformers_at)} Transformer module"
            f"{'' if transformers_at == [''] else ' at the root'}; a sentence-transformers source needs its one "
            "transformer in the directory itself (as save() writes it)."
        )
    unknown = sorted({kind for kind, _ in kinds if kind not in (TRANSFORMER, *CARRIED)})
    if unknown:
        raise ConversionError(
            f"{path} has module(s) of a type we cannot carry over ({', '.join(unknown)}); supported are "
            f"{', '.join(CARRIED)} after the transformer."
        )
    missing = [where for kind, where in kinds if kind != TRANSFORMER and where and kind != "Normalize"
               and not (Path(directory) / where).is_dir()]  # fmt: skip
    if missing:
        raise ConversionError(f"{path} names module folder(s) missing from {directory} ({', '.join(missing)}).")
    pickled = [
        str(file.relative_to(directory))
        for _, where in kinds
        if where and (Path(directory) / where).is_dir()
        for file in sorted((Path(directory) / where).rglob("*"))
        if file.suffix in PICKLE_SUFFIXES
    ]
    if pickled and not allow_pickle:
        raise ConversionError(
            f"{directory} has module weights stored as pickles ({', '.join(pickled[:3])}), which can run code when "
            "loaded; convert them to safetensors, or pass --allow-pickle if you trust them."
        )
    for name in pickled:
        check_safe_pickle(Path(directory) / name)
    return listed


def check_safe_pickle(file: Path) -> None:
    """A pickle the user allowed is still read only as torch's safe loading reads it (tensors, no code), as
    sentence-transformers will: one that holds more is refused here, before anything is written."""
    import pickle  # only for a module stored as a pickle, which the user allowed

    import torch  # only for a module stored as a pickle, which the user allowed

    try:
        torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ConversionError(
            f"{file} is a pickle that torch's safe loading refuses ({first}): it holds more than tensors, and "
            "loading it could run code; convert its weights to safetensors where you trust them."
        ) from None


def max_seq_length(directory: str | Path) -> int | None:
    """The length the source was used at: ``sentence_bert_config.json``'s ``max_seq_length`` (as
    sentence-transformers < 6 saves it), else the tokenizer's ``model_max_length`` (as 6.x does)."""
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length")):
        try:
            value = json.loads((Path(directory) / name).read_text(encoding="utf-8")).get(key)
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(value, int) and 0 < value < 10**6:  # tokenizers without a limit say ~1e30
            return value
    return None


def carry_modules(source: str | Path, staging: Path, max_length: int) -> list[str]:
    """Copy every module but the transformer, and the root's module files, into ``staging``; the
    transformer's ``max_seq_length`` becomes ``max_length``. Returns the module folders carried."""
    source = Path(source)
    listed = modules(source, allow_pickle=True)  # checked, with the user's opt-in, when the source was opened
    for name in ROOT_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, staging / name)
    carried = []
    for module in listed:
        where = module.get("path", "")
        if where and (source / where).is_dir():
            shutil.copytree(source / where, staging / where)
            carried.append(where)
    settings_file = source / "sentence_bert_config.json"
    settings = json.loads(settings_file.read_text(encoding="utf-8")) if settings_file.is_file() else {}
    settings["max_seq_length"] = max_length
    (staging / "sentence_bert_config.json").write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    return carried
