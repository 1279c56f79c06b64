"""The LSG converter (a peer) on the same checkpoint. Runs in the LSG venv (an older transformers,
see scripts/setup_lsg.sh) with only our standard-library modules on its path."""

from __future__ import annotations

import time
from typing import Any

from ...runtime import peak_rss_mb
from ..measure import emit, worker_main


def measure(params: dict[str, Any]) -> None:
    import transformers
    from lsg_converter import LSGConverter

    transformers.logging.set_verbosity_error()
    baseline = peak_rss_mb()
    started = time.perf_counter()
    converter = LSGConverter(max_sequence_length=params["max_length"])
    model, tokenizer = converter.convert_from_pretrained(params["source"], architecture="RobertaForMaskedLM")
    model.save_pretrained(params["output"])
    tokenizer.save_pretrained(params["output"])
    emit({"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": baseline})


if __name__ == "__main__":
    worker_main(measure)
