"""Our conversion of one checkpoint, streaming (optionally verified) or in memory."""

from __future__ import annotations

import time
from typing import Any

from ...runtime import peak_rss_mb
from ..measure import emit, worker_main


def _import_what_it_uses(in_memory: bool) -> None:
    """Everything the conversion imports, imported before the clock starts, as the floor imports torch and
    safetensors first: the in-process time is the conversion's, the whole-process cost is bench --what startup's."""
    import transformers

    transformers.LongformerConfig, transformers.LongformerTokenizerFast, transformers.AutoTokenizer  # noqa: B018
    if in_memory:
        transformers.RobertaForMaskedLM, transformers.LongformerForMaskedLM  # noqa: B018


def measure(params: dict[str, Any]) -> None:
    import transformers

    from ...pipeline import convert, convert_checkpoint, save_conversion

    transformers.logging.set_verbosity_error()
    _import_what_it_uses(params["mode"] == "in-memory")
    baseline = peak_rss_mb()
    started = time.perf_counter()
    if params["mode"] == "in-memory":
        save_conversion(convert(params["source"], max_length=params["max_length"]), None, params["output"])
        seconds, verify_seconds = time.perf_counter() - started, 0.0
    else:
        written = convert_checkpoint(
            params["source"],
            params["output"],
            max_length=params["max_length"],
            verify=params["verify"],
            smoke=False,
            progress=False,
        )
        seconds, verify_seconds = written.seconds, written.verify_seconds
    emit(
        {"seconds": seconds, "verify_seconds": verify_seconds, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": baseline}
    )


if __name__ == "__main__":
    worker_main(measure)
