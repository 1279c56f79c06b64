"""Model cards (``README.md`` with Hugging Face's YAML front matter): the one place a card is assembled.

Every card we write (a conversion's, an import's, a training run's) is a body plus this front matter;
what goes into the body is decided by the command that made the model.
"""

from __future__ import annotations

from typing import Any


def model_card(
    body: str,
    *,
    tags: list[str],
    pipeline_tag: str | None,
    library_name: str = "transformers",
    **known: Any,
) -> str:
    """A model card as huggingface_hub writes one: YAML front matter (fields that are ``None`` left out, e.g.
    an unknown ``base_model`` or ``license``), then the Markdown ``body``."""
    from huggingface_hub import ModelCard, ModelCardData  # only when a card is written: not on the way in

    metadata = {"library_name": library_name, **known, "tags": tags, "pipeline_tag": pipeline_tag}
    fields = {key: value for key, value in metadata.items() if value is not None}
    return str(ModelCard(f"---\n{ModelCardData(**fields).to_yaml()}\n---\n\n{body}"))


def loading_snippet(auto: str, class_name: str) -> list[str]:
    """The card's Python block: load the model with the ``auto`` class and its tokenizer."""
    return [
        "```python",
        f"from transformers import {auto}, AutoTokenizer",
        f'model = {auto}.from_pretrained("path/to/this/directory")  # a {class_name}',
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/directory")',
        "```",
    ]


def settings_text(options: dict[str, Any]) -> str:
    """Options as a card lists them: ``name=value`` each in backticks, the unset ones left out, values as a
    config file writes them (``true``, not Python's ``True``)."""
    return ", ".join(f"`{key}={_written(value)}`" for key, value in options.items() if value not in (None, [], ""))


def _written(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(map(_written, value))
    return str(value)
