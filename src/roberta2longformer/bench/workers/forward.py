"""One forward pass of a saved masked-LM model at one length, with transformers' own attention: the
yardstick for a whole ``convert`` with its verification (bench --what startup)."""

from __future__ import annotations

import time
from typing import Any

from ..measure import emit, worker_main


def measure(params: dict[str, Any]) -> None:
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    model = transformers.AutoModelForMaskedLM.from_pretrained(params["model"]).eval()
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (1, params["length"]), generator=generator)
    with torch.inference_mode():
        started = time.perf_counter()
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
        emit({"seconds": time.perf_counter() - started})


if __name__ == "__main__":
    worker_main(measure)
