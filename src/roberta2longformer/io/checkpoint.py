"""Checkpoints on disk, one tensor at a time: lazy reading and streaming, sharded writing.

Conversion is mostly copying: the floor for any converter is reading the source once and
writing the result once. Loading a source model and building the target model beside it costs
about three copies of the weights in memory. Here tensors stay on disk until the moment they are
written: the source is read with safetensors' ``safe_open`` (one tensor per read) and the output
is written tensor by tensor, so peak memory is about one tensor, not one model.

safetensors can read lazily but only writes whole dictionaries (``save_file`` needs every tensor
in memory at once), so :class:`CheckpointWriter` writes the format itself: an 8-byte little-endian
header length, a JSON header naming each tensor's dtype, shape and byte range, then the raw bytes
in order. Tests read every file we write back with safetensors' own ``load_file``.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import stat
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import split_state_dict_into_shards_factory
from huggingface_hub.constants import SAFETENSORS_INDEX_FILE as SAFE_INDEX_NAME
from huggingface_hub.constants import SAFETENSORS_WEIGHTS_FILE_PATTERN
from safetensors import safe_open
from tqdm.auto import tqdm

from ..errors import ConversionError
from ..runtime import libc_function

_SAFETENSORS_DTYPES = {
    torch.float64: "F64",
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int16: "I16",
    torch.int8: "I8",
    torch.uint8: "U8",
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
        return self[key] if key in self else default  # noqa: SIM401  (self.get would recurse; self[key] reads)

    def pop(self, key: str, *default: Any) -> Any:
        if key not in self and default:
            return default[0]
        return materialize(super().pop(key))


def read_index(index: Path) -> dict[str, str]:
    """The ``weight_map`` of a safetensors index (tensor name → shard file name), checked: every shard
    name is a plain file name, so a hostile index cannot point outside the model's directory."""
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()):
            raise TypeError
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError):
        raise ConversionError(
            f"{index} is not a valid safetensors index (no weight_map); re-save the checkpoint."
        ) from None
    outside = sorted({name for name in weight_map.values() if Path(name).name != name or name in ("", ".", "..")})
    if outside:
        raise ConversionError(
            f"{index.name} names shard(s) outside its directory ({', '.join(outside[:3])}); shard names must be plain "
            "file names next to the index, so this checkpoint is refused."
        )
    return weight_map


def require_regular_files(paths: list[Path]) -> None:
    """Refuse a FIFO, a device or a directory where a checkpoint file should be: reading one could hang."""
    odd = [path for path in paths if path.exists() and not stat.S_ISREG(path.stat().st_mode)]
    if odd:
        raise ConversionError(
            f"{odd[0]} is not a regular file (a FIFO, a device or a directory); a checkpoint's files must be plain "
            "files, so give the checkpoint as save_pretrained wrote it."
        )


def checkpoint_files(directory: Path) -> dict[Path, list[str] | None]:
    """Each safetensors file of a checkpoint with the tensor names the index places in it, or
    ``None`` for a lone unindexed file (all of its tensors: its own header names them)."""
    index = directory / SAFE_INDEX_NAME
    if index.is_file():
        by_file: dict[Path, list[str] | None] = {}
        for key, name in read_index(index).items():
            by_file.setdefault(directory / name, []).append(key)
        require_regular_files(list(by_file))
        return by_file
    files = sorted(directory.glob("*.safetensors"))
    if len(files) != 1:
        raise ConversionError(
            f"{directory} holds {len(files)} safetensors files and no {SAFE_INDEX_NAME}; "
            "keep one model.safetensors, or shards with their index."
        )
    require_regular_files(files)
    return {files[0]: None}


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
    state = LazyState()
    for path, keys in checkpoint_files(Path(directory)).items():
        with open_safetensors(path) as handle:  # validates the whole file before we trust its header
            _describe(handle, path, list(handle.keys()) if keys is None else keys, state, _byte_ranges(path))
    return state


def _byte_ranges(path: Path) -> dict[str, tuple[int, int]]:
    """Where each tensor's bytes are in the file: the header's ``data_offsets`` count from the end of
    the header (8-byte length + JSON), which safetensors' Python API does not expose."""
    with open(path, "rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    base = 8 + length
    return {
        key: (base + v["data_offsets"][0], base + v["data_offsets"][1])
        for key, v in header.items()
        if key != "__metadata__"
    }


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
            raise ConversionError(
                f"{self.key}: got shape {tuple(data.shape)}, expected {self.shape}; this is a bug, please report it."
            )
        return data.to(self.dtype).contiguous()


def _numel(shape: Sequence[int]) -> int:
    count = 1
    for size in shape:
        count *= size
    return count


def parse_size(size: int | str) -> int:
    """``"5GB"``, ``"500MB"``, ``"2GiB"`` or a byte count → bytes (the units ``save_pretrained`` takes)."""
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    if re.fullmatch(r"\s*[1-9]\d*\s*", str(size)):
        return int(size)  # a byte count
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B)\s*", str(size), flags=re.IGNORECASE)
    if not match or float(match[1]) <= 0:
        raise ConversionError(
            f"Invalid --max-shard-size {size!r}; give a number of bytes or a size such as 500MB or 5GB."
        )
    unit = match[2].upper()
    base = 1024 if "I" in unit else 1000
    return int(float(match[1]) * base ** "KMGT".index(unit[0].upper()) * base)


@dataclass(frozen=True)
class _FileLayout:
    """Where everything goes in one safetensors file: the encoded header, then each tensor's bytes."""

    path: Path
    planned: Sequence[Planned]
    header: bytes  # the 8-byte length followed by the JSON header
    starts: list[int]  # absolute position of each planned tensor's first byte

    @property
    def size(self) -> int:
        return self.starts[-1] + self.planned[-1].nbytes if self.planned else len(self.header)


def _layout(path: Path, planned: Sequence[Planned]) -> _FileLayout:
    header: dict[str, Any] = {}
    offset = 0
    for item in planned:
        header[item.key] = {
            "dtype": _SAFETENSORS_DTYPES[item.dtype],
            "shape": list(item.shape),
            "data_offsets": [offset, offset + item.nbytes],
        }
        offset += item.nbytes
    header["__metadata__"] = {"format": "pt"}
    encoded = json.dumps(header, separators=(",", ":")).encode("utf-8")
    encoded += b" " * (-len(encoded) % 8)  # the format aligns the data to 8 bytes
    base = 8 + len(encoded)
    starts = [base + header[item.key]["data_offsets"][0] for item in planned]
    return _FileLayout(path, planned, struct.pack("<Q", len(encoded)) + encoded, starts)


class CheckpointWriter:
    """Writes planned tensors into safetensors files in background threads, holding at most two
    tensors in memory.

    A tensor copied unchanged from a source file (same dtype) is copied by the kernel
    (``os.copy_file_range``): its bytes never enter this process, and the copy releases the GIL,
    so the caller's thread is free for other work (the streaming conversion checks its plan
    against the target model meanwhile). Anything computed or cast is materialised and written
    with ``pwrite``. Every tensor has its own byte range, so two tensors are written at once.

    :meth:`wait` returns the files once every byte is written (re-raising the first error);
    :meth:`cancel` stops after the tensors in flight. As a context manager, the block's exit waits,
    or cancels if the block raised.
    """

    def __init__(self, layouts: Sequence[_FileLayout], *, progress: bool = True, workers: int = 2) -> None:
        self.files = [layout.path for layout in layouts]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sources: dict[Path, Any] = {}
        self._outputs: list[Any] = []
        self._bar = tqdm(
            total=sum(layout.size - len(layout.header) for layout in layouts),
            unit="B",
            unit_scale=True,
            desc="Writing weights",
            disable=not progress,
        )
        self._pool = ThreadPoolExecutor(max_workers=workers)
        self._pending = []
        try:
            for layout in layouts:
                out = open(layout.path, "wb")  # noqa: SIM115  (held by the writer threads; closed in _close)
                self._outputs.append(out)
                _reserve(out.fileno(), layout.size)
                _write_all(out.fileno(), layout.header, 0)
                self._pending += [
                    self._pool.submit(self._write_one, out.fileno(), item, start)
                    for item, start in zip(layout.planned, layout.starts)
                ]
        except BaseException:
            self.cancel()
            raise

    def _source_fd(self, file: Path) -> int:
        with self._lock:
            if file not in self._sources:
                self._sources[file] = open(file, "rb")  # noqa: SIM115  (shared by the threads; closed in _close)
            return self._sources[file].fileno()

    def _write_one(self, fd: int, item: Planned, position: int) -> None:
        if self._stop.is_set():
            return
        value = item.value
        if isinstance(value, StoredTensor) and value.dtype == item.dtype and value.end - value.start == item.nbytes:
            _copy_range(self._source_fd(value.file), value.start, value.end, fd, position)
        else:
            data = item.tensor()
            _write_all(fd, data.reshape(-1).view(torch.uint8).numpy().data, position)
            del data
        self._bar.update(item.nbytes)

    def wait(self) -> list[Path]:
        try:
            for pending in self._pending:
                pending.result()
        except BaseException:
            self.cancel()
            raise
        self._close()
        return self.files

    def cancel(self) -> None:
        self._stop.set()
        self._close()

    def _close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        for handle in [*self._outputs, *self._sources.values()]:
            handle.close()
        self._outputs, self._sources = [], {}
        self._bar.close()

    def __enter__(self) -> CheckpointWriter:
        return self

    def __exit__(self, error_type: Any, *rest: Any) -> None:
        if error_type is None:
            self.wait()
        else:
            self.cancel()


def _reserve(fd: int, size: int) -> None:
    """Ask the filesystem for the whole file's blocks up front (``fallocate``), best effort.

    Without it ext4 allocates blocks write by write, which costs the copy noticeably at these
    sizes. glibc's ``posix_fallocate`` is not used: where the filesystem cannot reserve blocks, it
    writes them itself, which would double the I/O.
    """
    fallocate = libc_fallocate()
    if fallocate is not None and size > 0:
        fallocate(fd, 0, 0, size)  # a failure (unsupported filesystem) only costs the speed-up


def libc_fallocate() -> Callable[[int, int, int, int], int] | None:
    return libc_function("fallocate64", (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64))


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


def start_checkpoint(
    directory: Path, planned: Sequence[Planned], *, max_shard_size: int | str = "5GB", progress: bool = True
) -> CheckpointWriter:
    """Start writing ``planned`` as ``model.safetensors``, or as shards plus ``model.safetensors.index.json``.

    The split and the names are ``huggingface_hub``'s (as ``save_pretrained`` shards). Returns at once,
    with the writer copying in the background; call its ``wait()``.
    """
    by_key = {item.key: item for item in planned}
    split = split_state_dict_into_shards_factory(
        by_key,
        get_storage_size=lambda item: item.nbytes,
        filename_pattern=SAFETENSORS_WEIGHTS_FILE_PATTERN,
        max_shard_size=parse_size(max_shard_size),
    )
    if split.is_sharded:
        index = {"metadata": split.metadata, "weight_map": split.tensor_to_filename}
        (directory / SAFE_INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    layouts = [
        _layout(directory / name, [by_key[key] for key in keys]) for name, keys in split.filename_to_tensors.items()
    ]
    return CheckpointWriter(layouts, progress=progress)
