"""Checkpoints on disk, one tensor at a time: lazy reading and streaming, sharded writing.

Conversion is mostly copying: the floor for any converter is reading the source once and
writing the result once. Loading a source model and building the target model beside it costs
about three copies of the weights in memory. Here tensors stay on disk until the moment they are
written: the source is read with safetensors' ``safe_open`` (one tensor per read) and the output
is written tensor by tensor, so peak memory is about one tensor, not one model.

safetensors can read lazily but only writes whole dictionaries (``save_file`` needs every tensor
in memory at once), so :func:`write_safetensors` writes the format itself: an 8-byte little-endian
header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes
in order. Tests read every file we write back with safetensors' own ``load_file``.
"""

from __future__ import annotations

import json
import os
import re
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from .errors import ConversionError

SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_INDEX_NAME = "model.safetensors.index.json"

_SAFETENSORS_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8", torch.uint8: "U8",
    torch.bool: "BOOL",
}
_TORCH_DTYPES = {name: dtype for dtype, name in _SAFETENSORS_DTYPES.items()}


@dataclass(frozen=True)
class StoredTensor:
    """A tensor still in a safetensors file: shape and dtype are known, the data is read by ``load``."""

    file: Path
    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    #: Absolute byte range of the tensor's data in ``file`` (the header says where it is).
    start: int = 0
    end: int = 0

    def load(self) -> torch.Tensor:
        # A fresh handle per tensor: a handle maps the whole file, and every page read through it
        # stays resident (and counts as this process's memory) until the handle is closed.
        with open_safetensors(self.file) as handle:
            return handle.get_tensor(self.key)


def materialize(value: torch.Tensor | StoredTensor) -> torch.Tensor:
    return value.load() if isinstance(value, StoredTensor) else value


class LazyState(dict):
    """A state dict whose values may still be on disk; indexing a key reads its tensor.

    Moving entries around (``items()``, ``update``, renaming) keeps them lazy, so a key mapping
    costs nothing; code that *computes* with a tensor (``state[key]``, ``state.pop(key)``) gets a
    real one. The pipeline therefore runs unchanged on loaded models and on files.
    """

    def __getitem__(self, key: str) -> torch.Tensor:
        return materialize(super().__getitem__(key))

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self and default:
            return default[0]
        return materialize(super().pop(key))


def checkpoint_files(directory: Path) -> dict[str, Path]:
    """Tensor name → the safetensors file holding it, for one file or an indexed set of shards."""
    index = directory / SAFE_INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
            return {key: directory / name for key, name in weight_map.items()}
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
            raise ConversionError(f"{index} is not a valid safetensors index (no weight_map); re-save the checkpoint.") from None
    files = sorted(directory.glob("*.safetensors"))
    if len(files) != 1:
        raise ConversionError(
            f"{directory} holds {len(files)} safetensors files and no {SAFE_INDEX_NAME}; "
            "keep one model.safetensors, or shards with their index."
        )
    return {key: files[0] for key in _keys_of(files[0])}


def _keys_of(path: Path) -> list[str]:
    with open_safetensors(path) as handle:
        return list(handle.keys())


def open_safetensors(path: Path) -> Any:
    """``safe_open`` with a corrupt or truncated file reported as one clear sentence."""
    try:
        return safe_open(str(path), framework="pt")
    except Exception as error:  # safetensors raises its own error type
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ConversionError(
            f"Could not read {path} ({reason}); the file is corrupt or truncated, re-save the checkpoint."
        ) from None


def read_lazily(directory: str | Path) -> LazyState:
    """Every tensor of a safetensors checkpoint as a :class:`StoredTensor` (headers only are read)."""
    directory = Path(directory)
    by_file: dict[Path, list[str]] = {}
    for key, path in checkpoint_files(directory).items():
        by_file.setdefault(path, []).append(key)
    state = LazyState()
    for path, keys in by_file.items():
        with open_safetensors(path) as handle:  # validates the whole file before we trust its header
            _describe(handle, path, keys, state, _byte_ranges(path))
    return state


def _byte_ranges(path: Path) -> dict[str, tuple[int, int]]:
    """Where each tensor's bytes are in the file: the header's ``data_offsets`` count from the end of
    the header (8-byte length + JSON), which safetensors' Python API does not expose."""
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    base = 8 + length
    return {key: (base + v["data_offsets"][0], base + v["data_offsets"][1]) for key, v in header.items() if key != "__metadata__"}


def _describe(handle: Any, path: Path, keys: list[str], state: LazyState, ranges: dict[str, tuple[int, int]]) -> None:
    """Add a :class:`StoredTensor` for each of ``keys`` (dtype and shape from the header only)."""
    present = set(handle.keys())
    for key in keys:
        if key not in present:
            raise ConversionError(
                f"{SAFE_INDEX_NAME} places {key!r} in {path.name}, which does not hold it; "
                "the checkpoint is inconsistent, re-save it."
            )
        view = handle.get_slice(key)
        dtype = _TORCH_DTYPES.get(view.get_dtype())
        if dtype is None:
            raise ConversionError(f"{path.name}: tensor {key!r} has dtype {view.get_dtype()}, which we cannot convert.")
        dict.__setitem__(state, key, StoredTensor(path, key, tuple(view.get_shape()), dtype, *ranges[key]))


# --------------------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class Planned:
    """One tensor to write: its final name, shape and dtype, and how to get its values."""

    key: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    value: torch.Tensor | StoredTensor

    @property
    def nbytes(self) -> int:
        return _numel(self.shape) * torch.empty((), dtype=self.dtype).element_size()

    def tensor(self) -> torch.Tensor:
        data = materialize(self.value)
        if tuple(data.shape) != self.shape:
            raise ConversionError(f"{self.key}: got shape {tuple(data.shape)}, expected {self.shape}; this is a bug, please report it.")
        return data.to(self.dtype).contiguous()


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def parse_size(size: int | str) -> int:
    """``"5GB"``, ``"500MB"``, ``"2GiB"`` or a byte count → bytes (the units ``save_pretrained`` takes)."""
    if isinstance(size, int) and size > 0:
        return size
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", str(size), flags=re.IGNORECASE)
    if not match:
        raise ConversionError(f"Invalid shard size {size!r}; give bytes or a size such as 500MB or 5GB.")
    unit = match[2].upper()
    base = 1024 if "I" in unit else 1000
    return int(float(match[1]) * base ** "KMGT".index(unit[0].upper()) * base)


def shard(planned: Sequence[Planned], max_shard_size: int) -> list[list[Planned]]:
    """Consecutive groups of at most ``max_shard_size`` bytes (a bigger tensor gets its own shard)."""
    shards: list[list[Planned]] = [[]]
    size = 0
    for item in planned:
        if shards[-1] and size + item.nbytes > max_shard_size:
            shards.append([])
            size = 0
        shards[-1].append(item)
        size += item.nbytes
    return shards


def write_safetensors(path: Path, planned: Sequence[Planned], on_written: Callable[[int], None] = lambda n: None) -> None:
    """Write ``planned`` to one safetensors file, holding at most two tensors in memory.

    A tensor copied unchanged from a source file (same dtype) is copied by the kernel
    (``os.copy_file_range``): its bytes never enter this process. Anything computed or cast is
    materialised and written.
    """
    header: dict[str, Any] = {}
    offset = 0
    for item in planned:
        header[item.key] = {
            "dtype": _SAFETENSORS_DTYPES[item.dtype], "shape": list(item.shape), "data_offsets": [offset, offset + item.nbytes],
        }
        offset += item.nbytes
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    starts = [8 + len(encoded) + header[item.key]["data_offsets"][0] for item in planned]
    sources: dict[Path, Any] = {}
    lock = threading.Lock()

    def source_fd(file: Path) -> int:
        with lock:
            if file not in sources:
                sources[file] = open(file, "rb")
            return sources[file].fileno()

    def write_one(item: Planned, position: int) -> None:
        value = item.value
        if isinstance(value, StoredTensor) and value.dtype == item.dtype and value.end - value.start == item.nbytes:
            _copy_range(source_fd(value.file), value.start, value.end, fd, position)
        else:
            data = item.tensor()
            _write_all(fd, data.reshape(-1).view(torch.uint8).numpy().data, position)
            del data
        on_written(item.nbytes)

    try:
        with open(path, "wb") as out:
            fd = out.fileno()
            _write_all(fd, struct.pack("<Q", len(encoded)) + encoded, 0)
            # Every tensor has its own byte range, so two threads copy at once (the kernel copies
            # and pwrite release the GIL); at most two computed tensors are in memory at a time.
            with ThreadPoolExecutor(max_workers=2) as pool:
                for done in [pool.submit(write_one, item, start) for item, start in zip(planned, starts)]:
                    done.result()
    finally:
        for source in sources.values():
            source.close()


def _write_all(fd: int, data: Any, position: int) -> int:
    view = memoryview(data).cast("B")
    while view:
        written = os.pwrite(fd, view, position)
        view, position = view[written:], position + written
    return position


def _copy_range(source_fd: int, start: int, end: int, fd: int, position: int) -> int:
    """Copy ``source[start:end]`` to ``fd`` at ``position`` in the kernel, or through a buffer where it cannot."""
    while start < end:
        try:
            copied = os.copy_file_range(source_fd, fd, end - start, start, position)
        except (AttributeError, OSError):  # not Linux, or a filesystem pair the kernel will not copy between
            copied = 0
        if copied == 0:
            chunk = os.pread(source_fd, min(end - start, 64 * 2**20), start)
            if not chunk:
                raise ConversionError(f"The source ended early while copying {end - start} bytes; it is truncated.")
            copied = _write_all(fd, chunk, position) - position
        start, position = start + copied, position + copied
    return position


def write_checkpoint(
    directory: Path, planned: Sequence[Planned], *, max_shard_size: int | str = "5GB", progress: bool = True
) -> list[Path]:
    """Write ``planned`` as ``model.safetensors``, or as shards plus ``model.safetensors.index.json``."""
    from tqdm.auto import tqdm

    groups = shard(planned, parse_size(max_shard_size))
    total = sum(item.nbytes for item in planned)
    names = (
        [SAFE_WEIGHTS_NAME]
        if len(groups) == 1
        else [f"model-{i:05d}-of-{len(groups):05d}.safetensors" for i in range(1, len(groups) + 1)]
    )
    with tqdm(total=total, unit="B", unit_scale=True, desc="Writing weights", disable=not progress) as bar:
        for name, group in zip(names, groups):
            write_safetensors(directory / name, group, on_written=bar.update)
    if len(groups) > 1:
        index = {
            "metadata": {"total_size": total},
            "weight_map": {item.key: name for name, group in zip(names, groups) for item in group},
        }
        (directory / SAFE_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return [directory / name for name in names]
