"""Facts about this process and machine that reports record: memory, versions, devices.

The one place that reads peak memory: ``VmHWM`` from ``/proc/self/status``, which, unlike
``getrusage``'s ``ru_maxrss``, a child does not inherit from the (possibly large) parent that
forked it. ``getrusage`` is the fallback where there is no ``/proc``. Imports only the standard
library (``torch`` and ``transformers`` are imported by :func:`environment` when called).
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import resource
import sys
from collections.abc import Callable
from typing import Any


def peak_rss_mb() -> float:
    """This process's peak resident memory, in MiB."""
    return _status_mb("VmHWM:")


def current_rss_mb() -> float:
    return _status_mb("VmRSS:")


def reset_peak_rss() -> None:
    """Reset ``VmHWM`` to the current RSS (Linux ≥ 4.0), best effort, so the next peak is a phase's own."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


def _status_mb(field: str) -> float:
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def available_memory_bytes() -> int | None:
    """Memory a new allocation can get without swapping (``MemAvailable``), or ``None`` where unknown."""
    try:
        with open("/proc/meminfo") as meminfo:
            return next(int(line.split()[1]) * 1024 for line in meminfo if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return None


@functools.cache
def libc_function(name: str, argtypes: tuple, restype: Any = ctypes.c_int) -> Callable[..., int] | None:
    """A function of Linux's C library (``errno`` kept for ``ctypes.get_errno``), or ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    function.argtypes, function.restype = list(argtypes), restype
    return function


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions of this tool, Python, torch and transformers, and the machine it ran on."""
    import torch  # only when a report records the versions: not when the command line starts
    import transformers

    from . import __version__  # only when a report records the versions: not when the command line starts

    return {
        "roberta2longformer": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
