"""Long documents for pretraining and evaluation: read with ``datasets``, tokenized, packed.

Sources: text files (one document per file), JSON Lines (one document per line, in a text
field), directories of those, or a ``datasets`` hub name when online. ``datasets`` shows progress
and caches the tokenized result, so a second run with the same data and tokenizer is instant.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import datasets
from transformers import PreTrainedTokenizerBase

from ..errors import ConversionError

TEXT_SUFFIXES = (".txt", ".md")
JSON_SUFFIXES = (".jsonl", ".json")


def _files(paths: Sequence[str | Path]) -> tuple[list[str], list[str]]:
    """(text files, JSON Lines files) named by ``paths`` (directories are searched recursively)."""
    texts, jsons = [], []
    for given in paths:
        path = Path(given)
        found = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in found:
            if file.suffix in TEXT_SUFFIXES:
                texts.append(str(file))
            elif file.suffix in JSON_SUFFIXES:
                jsons.append(str(file))
            elif not path.is_dir():
                raise ConversionError(
                    f"{file} is neither a text file ({', '.join(TEXT_SUFFIXES)}) nor JSON Lines "
                    f"({', '.join(JSON_SUFFIXES)}); give documents in one of those."
                )
    return texts, jsons


def load_documents(sources: Sequence[str | Path], *, text_field: str = "text") -> datasets.Dataset:
    """A ``Dataset`` with one ``text`` row per document, from files, directories or a hub name."""
    if not sources:
        raise ConversionError("No data given; pass text files, JSON Lines files, directories or a datasets name.")
    local = [s for s in sources if Path(s).exists()]
    if len(local) != len(sources):
        looks_like_path = any(
            Path(s).suffix in TEXT_SUFFIXES + JSON_SUFFIXES or str(s).startswith((".", "/")) for s in sources
        )
        if local or len(sources) != 1 or looks_like_path:
            missing = [str(s) for s in sources if not Path(s).exists()]
            raise ConversionError(f"{', '.join(missing)} do(es) not exist; pass existing files or directories.")
        return _hub_documents(str(sources[0]), text_field)
    texts, jsons = _files(local)
    with _quiet_reading():
        return _read_local(texts, jsons, local, text_field)


@contextlib.contextmanager
def _quiet_reading() -> Iterator[None]:
    """Reading local files is no download: without datasets' progress bars ("Generating train split", …)."""
    was_disabled = datasets.utils.are_progress_bars_disabled()
    datasets.utils.disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            datasets.utils.enable_progress_bars()


def _read_local(texts: list[str], jsons: list[str], local: Sequence[str | Path], text_field: str) -> datasets.Dataset:
    parts = []
    try:
        if texts:
            parts.append(datasets.load_dataset("text", data_files=texts, sample_by="document", split="train"))
        if jsons:
            loaded = datasets.load_dataset("json", data_files=jsons, split="train")
            if text_field not in loaded.column_names:
                raise ConversionError(
                    f"The JSON Lines data has no {text_field!r} field (it has {', '.join(loaded.column_names)}); "
                    "name the text field with --text-field."
                )
            parts.append(loaded.select_columns([text_field]).rename_column(text_field, "text"))
    except ConversionError:
        raise
    except (UnicodeDecodeError, ValueError, datasets.exceptions.DatasetGenerationError) as error:
        raise ConversionError(
            f"Could not read the data ({str(error).splitlines()[0][:200]}); give UTF-8 text or JSON Lines."
        ) from None
    documents = datasets.concatenate_datasets(parts) if len(parts) > 1 else (parts[0] if parts else None)
    if documents is None or not any(text.strip() for text in documents["text"]):
        raise ConversionError(f"The data in {', '.join(map(str, local))} is empty; give files with text in them.")
    return documents.filter(lambda row: bool(row["text"].strip()))


def _hub_documents(name: str, text_field: str) -> datasets.Dataset:
    try:
        loaded = datasets.load_dataset(name, split="train")
    except Exception as error:  # offline, unknown name, …: all the user can act on is the message
        raise ConversionError(
            f"{name!r} is not a local path and could not be loaded as a datasets name "
            f"({str(error).splitlines()[0][:200]}); pass local files, or go online."
        ) from None
    if text_field not in loaded.column_names:
        raise ConversionError(f"The dataset {name!r} has no {text_field!r} column; name it with --text-field.")
    return loaded.select_columns([text_field]).rename_column(text_field, "text")


def split_documents(
    documents: datasets.Dataset, fraction: float, seed: int
) -> tuple[datasets.Dataset, datasets.Dataset | None]:
    """Held-out documents (whole ones, so no text is in both); none when there is one document."""
    if not 0 <= fraction < 1:
        raise ConversionError(f"The held-out fraction must be in [0, 1), got {fraction}.")
    if fraction == 0 or len(documents) < 2:
        return documents, None
    count = max(1, round(len(documents) * fraction))
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


def with_first_token_global(batch: dict) -> dict:
    """``batch`` with a ``global_attention_mask`` that makes each row's first token global (Longformer, LED)."""
    import torch

    mask = torch.zeros_like(batch["input_ids"])
    mask[:, 0] = 1
    batch["global_attention_mask"] = mask
    return batch
