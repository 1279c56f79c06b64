"""Facts about this process and machine that reports record (memory, versions, devices), and the stop
signals it received.

The one place that reads peak memory: ``VmHWM`` from ``/proc/self/status``, which, unlike
``getrusage``'s ``ru_maxrss``, a child does not inherit from the (possibly large) parent that
forked it. ``getrusage`` is the fallback where there is no ``/proc``. Imports only the standard
library (``torch`` and ``transformers`` are imported by :func:`environment` when called).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import platform
import resource
import signal
import sys
import time
from collections.abc import Callable, Iterator
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


#: The stop signal this process received (recorded by the command line's handler), what it finished
#: writing, and the training runs that can be resumed.
_STOP: list[int] = []
_WRITTEN: list[str] = []
_RESUMABLE: list[str] = []
#: Tests stop a command at a named phase (see :func:`phase`); never set in normal use.
PAUSE_VARIABLE = "ROBERTA2LONGFORMER_PAUSE_AT"


def request_stop(signum: int) -> None:
    """Record a stop signal (the first one counts)."""
    if not _STOP:
        _STOP.append(signum)


def forget_stop() -> None:
    """Forget a recorded stop (for a process that runs commands one after another, such as a test's)."""
    _STOP.clear()


def stop_requested() -> int | None:
    """The stop signal received, if any."""
    return _STOP[0] if _STOP else None


def stop_if_requested() -> None:
    """A safe point: leave with ``SystemExit(128 + signal)`` if a stop was requested.

    The signal handler raises that itself wherever the command is, except where Python cannot
    deliver it: raised inside a finalizer (``__del__``, run by the garbage collector at any moment),
    an exception is printed and dropped, and the command would carry on. Writing into place and
    every training step pass through here, so such a stop still takes effect before anything is moved.
    """
    if _STOP:
        raise SystemExit(128 + _STOP[0])


def phase(name: str) -> None:
    """A command reached phase ``name`` (``loading``, ``writing``, ``verifying``, ``moving``, ``training``): a safe point
    (:func:`stop_if_requested`), where a test can also hold the command until it sends a signal, so that
    which phase a signal hits is decided, not raced (``ROBERTA2LONGFORMER_PAUSE_AT=NAME``)."""
    stop_if_requested()
    if os.environ.get(PAUSE_VARIABLE) == name:
        print(f"paused at {name}", file=sys.stderr, flush=True)
        while not _STOP:
            time.sleep(0.01)  # the handler raises here as soon as the signal arrives
        stop_if_requested()


#: The signals that stop a command (Ctrl-C, kill, a closed terminal).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Within the block, stop signals wait (they are delivered, and raise, right after it): for steps that
    must happen together or not at all, such as moving an output into place and recording that it was."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def record_written(path: str | os.PathLike) -> None:
    """``path`` was moved into place, complete."""
    _WRITTEN.append(str(path))


def written() -> list[str]:
    return list(_WRITTEN)


def record_resumable(output_dir: str | os.PathLike) -> None:
    """A training run writes its checkpoints into ``output_dir`` (``--resume`` continues it)."""
    _RESUMABLE.append(str(output_dir))


def resumable() -> list[str]:
    return list(_RESUMABLE)
