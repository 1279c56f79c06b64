"""Reading a source (or converted) model and tokenizer from a directory, a hub id or a built-in name."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import transformers
from transformers import AutoConfig, AutoTokenizer

from ..compat import keep_saved_dtype
from ..errors import ConversionError
from ..io.checkpoint import read_index, read_lazily, require_regular_files
from ..io.sentence_transformers import is_sentence_transformer, modules
from .checks import check_layer_count
from .families import family_for, is_supported
from .heads import head_for_class_name, saved_class_name
from .locations import resolve_source

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel


def _check_local_checkpoint(path: Path, allow_pickle: bool) -> None:
    if not path.is_dir():
        raise ConversionError(
            f"{path} is a file, not a model directory; pass the directory that holds its config.json "
            "(written by save_pretrained())."
        )
    require_regular_files([path / "config.json", *path.glob("*.safetensors"), *path.glob("*.json")])
    if not (path / "config.json").is_file():
        raise ConversionError(f"{path} has no config.json; pass a directory written by save_pretrained().")
    refuse_code(path / "config.json")
    if (path / "modules.json").is_file():  # a sentence-transformers directory: its modules must be ones we carry
        modules(path, allow_pickle=allow_pickle)
    index = path / "model.safetensors.index.json"
    if index.is_file():
        _check_shards(index, allow_pickle)
        return
    if any(path.glob("*.safetensors")):
        return
    if any(path.glob("*.bin")) or any(path.glob("*.pt")):
        if allow_pickle:
            return
        raise ConversionError(
            f"{path} holds only pickle weights (.bin/.pt), which can run code when loaded; "
            "convert them to safetensors, or pass --allow-pickle if you trust them."
        )
    raise ConversionError(f"{path} has a config.json but no weights (*.safetensors).")


def refuse_code(config: Path) -> None:
    """We never run code shipped with a checkpoint: a config that names some (``auto_map``) is refused."""
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError, RecursionError):
        return  # reported when the config is read
    if auto_map:
        raise ConversionError(
            f"{config} names Python code shipped with the checkpoint (auto_map: {', '.join(sorted(auto_map))}), "
            "and this tool never runs a checkpoint's code; convert a model of a type transformers itself knows."
        )


def _check_shards(index: Path, allow_pickle: bool = False) -> None:
    shards = sorted(set(read_index(index).values()))
    pickled = [name for name in shards if not name.endswith(".safetensors")]
    if pickled and not allow_pickle:
        raise ConversionError(
            f"{index.name} names shard(s) that are not safetensors ({', '.join(pickled[:3])}), which could run code "
            "when loaded; convert them to safetensors, or pass --allow-pickle if you trust them."
        )
    missing = [name for name in shards if not (index.parent / name).is_file()]
    if missing:
        raise ConversionError(
            f"{index.name} names {len(missing)} shard(s) missing from {index.parent} ({', '.join(missing[:3])}); "
            "copy the whole checkpoint."
        )


def load_config(source: str | Path, *, allow_pickle: bool = False) -> PretrainedConfig:
    """The config of a checkpoint, after checking that a local one is complete and safe to load."""
    location = resolve_source(source)
    if Path(location).exists():
        _check_local_checkpoint(Path(location), allow_pickle)
    try:
        config = AutoConfig.from_pretrained(location, trust_remote_code=False)
    except (OSError, ValueError, TypeError, AttributeError, RecursionError, json.JSONDecodeError) as error:
        raise ConversionError(_unreadable(location, error)) from None
    except Exception as error:  # huggingface_hub's strict dataclasses refuse a field of the wrong type
        if "Validation" not in type(error).__name__:
            raise
        raise ConversionError(_unreadable(location, error)) from None
    _check_dtype(config, location)
    return config


def _check_dtype(config: PretrainedConfig, location: str) -> None:
    """A ``dtype`` (``torch_dtype``) field that names no torch dtype would fail later, far from its cause."""
    import torch  # the config is read: the model, and torch, come next

    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    if isinstance(dtype, str) and dtype != "auto" and not isinstance(getattr(torch, dtype, None), torch.dtype):
        raise ConversionError(
            f"The config.json in {location} names the dtype {dtype!r}, which torch does not have; "
            "give the config.json that was saved with these weights."
        )


def _unreadable(location: str, error: Exception) -> str:
    lines = [line.strip() for line in str(error).strip().splitlines()[:2]]
    first_line = " ".join(lines) if lines else type(error).__name__
    if Path(location).exists():
        return f"Could not read the checkpoint in {location} ({first_line}); check that it is complete and was written by save_pretrained()."
    return (
        f"{location!r} is not a local directory and could not be loaded as a hub model id "
        f"({first_line}); pass a local directory, or go online for hub ids."
    )


def model_class_for(config: PretrainedConfig) -> type[PreTrainedModel]:
    """The class the checkpoint was saved from (``architectures[0]``), else the base Auto class."""
    for name in getattr(config, "architectures", None) or ():
        cls = getattr(transformers, name, None)
        if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
            return cls
        if cls is not None:
            raise ConversionError(
                f"config.json names {name} as the model's class (architectures), which is not a model class; "
                "give the config.json that was saved with the model."
            )
    return transformers.AutoModel


def check_floating(tensors: Iterable[tuple[str, Any]]) -> None:
    """A model's weights are floating point; integer (or bool) ones mean a checkpoint that is not a model's."""
    wrong = [f"{key} ({str(t.dtype).removeprefix('torch.')})" for key, t in tensors if not t.dtype.is_floating_point]
    if wrong:
        raise ConversionError(
            f"The checkpoint holds {len(wrong)} weight(s) that are not floating point ({', '.join(wrong[:3])}); "
            "a model's weights are floats, so re-save it from the model with save_pretrained()."
        )


def check_shapes(location: str, config: PretrainedConfig, stored: Mapping[str, Any]) -> None:
    """Refuse stored weights whose shapes differ from what the config declares, naming them (transformers
    would say only that sizes mismatch). A source of a family we convert is checked against the family's
    layout; other models (our targets) are left to transformers."""
    if not is_supported(config):
        return
    family, head = family_for(config), head_for_class_name(saved_class_name(config))
    stored_as = family.canonical_names(stored, head)
    shapes = {name: tuple(dict.__getitem__(stored, key).shape) for name, key in stored_as.items()}  # headers only
    wrong = [
        f"{stored_as[name]} {shapes[name]} (config.json says {shape})"
        for name, shape in family.canonical_layout(config, head).items()
        if name in shapes and shapes[name] != shape
    ]
    if wrong:
        raise ConversionError(
            f"The checkpoint in {location} does not match its config.json ({'; '.join(wrong[:3])}); "
            "give the config.json that was saved with these weights."
        )


def load_model(
    source: str | Path, *, allow_pickle: bool = False, config: PretrainedConfig | None = None
) -> PreTrainedModel:
    """The model saved in ``source``, of the class it was saved from, in eval mode; ``config``: its config,
    already read (and checked) by :func:`load_config`."""
    location = resolve_source(source)
    config = config or load_config(location, allow_pickle=allow_pickle)
    cls = model_class_for(config)
    if Path(location).is_dir() and any(Path(location).glob("*.safetensors")):
        # from_pretrained would cast integer weights to floats without a word
        stored = read_lazily(location)
        check_floating((k, v) for k, v in dict.items(stored) if k.endswith((".weight", ".bias")))
        check_shapes(location, config, stored)
    model, info = load_pretrained(
        cls, location, allow_pickle=allow_pickle, output_loading_info=True, **keep_saved_dtype()
    )
    check_layer_count(config, info.get("unexpected_keys", ()), location)
    _refuse_random_weights(info.get("missing_keys", ()), location, cls)
    return model.eval()


def load_pretrained(cls: Any, location: str, *, allow_pickle: bool = False, **kwargs: Any) -> Any:
    """``cls.from_pretrained(location, …)`` — the one way every command loads weights: safetensors only unless
    ``allow_pickle``, never the checkpoint's code, and whatever goes wrong (a corrupt file, a pickle that torch's
    safe loading refuses, a full disk) said in one sentence."""
    try:
        return cls.from_pretrained(
            location, use_safetensors=None if allow_pickle else True, trust_remote_code=False, **kwargs
        )
    except (OSError, ValueError, RuntimeError, KeyError, RecursionError) as error:
        raise ConversionError(_unreadable(location, error)) from None
    except Exception as error:  # safetensors' and pickle's own error types
        if type(error).__name__ == "UnpicklingError":
            raise ConversionError(_unpicklable(location, error)) from None
        if type(error).__name__ != "SafetensorError":
            raise
        raise ConversionError(_unreadable(location, error)) from None


def load_sentence_transformer(location: str | Path, *, allow_pickle: bool = False) -> Any:
    """A sentence-transformers model from its directory, after the checks every source gets (complete, no code
    of its own, pickles in none of its modules without ``allow_pickle``), on the CPU, in eval mode."""
    from sentence_transformers import SentenceTransformer  # seconds of imports: only for such a model

    path = resolve_source(location)
    load_config(path, allow_pickle=allow_pickle)
    if not is_sentence_transformer(path):
        raise ConversionError(
            f"{location} is not a sentence-transformers model (no modules.json); give one, or a model converted "
            "from one, so that its own pooling and normalisation are used."
        )
    try:
        model = SentenceTransformer(str(path), device="cpu", trust_remote_code=False)
    except (OSError, ValueError, RuntimeError, KeyError) as error:
        raise ConversionError(_unreadable(str(path), error)) from None
    except Exception as error:
        if type(error).__name__ != "UnpicklingError":
            raise
        raise ConversionError(_unpicklable(str(path), error)) from None
    return model.eval()


def _unpicklable(location: str, error: Exception) -> str:
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
    return (
        f"{location} holds a pickle that torch's safe loading refuses ({first}): it holds more than tensors, "
        "and loading it could run code; convert its weights to safetensors where you trust them."
    )


def _refuse_random_weights(missing: Iterable[str], location: str, cls: type) -> None:
    """Weights missing from the checkpoint are filled at random by from_pretrained: a model that cannot be
    right. A missing pooler is the exception (models are routinely saved without one, and every user of the
    checkpoint gets the same random pooler), and is carried over as from_pretrained builds it."""
    random = sorted(key for key in missing if ".pooler." not in f".{key}")
    if random:
        raise ConversionError(
            f"The checkpoint in {location} lacks {len(random)} weight(s) that a {cls.__name__} has "
            f"({', '.join(random[:3])}{' …' if len(random) > 3 else ''}), which loading would fill at random; "
            "it is incomplete, re-save it with save_pretrained()."
        )


def load_tokenizer(source: str | Path):
    """The tokenizer saved next to a model, or ``None`` when there is none."""
    location = resolve_source(source)
    path = Path(location)
    if path.is_dir() and not any(
        (path / name).is_file()
        for name in ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "sentencepiece.bpe.model")
    ):
        return None
    try:
        return AutoTokenizer.from_pretrained(location, trust_remote_code=False)
    except Exception as error:
        # Files of another schema, nested too deeply, or that the tokenizers library (plain ``Exception``) refuses.
        expected = (OSError, ValueError, KeyError, TypeError, AttributeError, RecursionError)
        if not isinstance(error, expected) and type(error) is not Exception:
            raise
        lines = str(error).strip().splitlines()
        why = f"a field it needs is missing: {error}" if isinstance(error, KeyError) else (lines or [""])[0][:160]
        raise ConversionError(
            f"Could not read the tokenizer files in {location} ({why or type(error).__name__}); "
            "save it with tokenizer.save_pretrained() next to the model."
        ) from None
