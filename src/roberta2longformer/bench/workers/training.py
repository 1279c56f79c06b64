"""One masked-LM (or encoder-only) optimizer step at one length, timed after a warm-up step."""

from __future__ import annotations

import contextlib
import statistics
from typing import Any

from ..measure import DeviceMemory, emit, time_once, worker_main
from ..models import build_model, model_inputs


def measure(params: dict[str, Any]) -> None:
    """One masked-LM optimizer step (forward, backward, AdamW) at one length, timed after a warm-up step."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    device, length, batch = params["device"], params["length"], params["batch"]
    masked_lm = params.get("head", "mlm") == "mlm"
    model = (
        build_model(params["arch"], params["shape"], length, masked_lm=masked_lm, backend=params["backend"])
        .to(device)
        .train()
    )
    if params["checkpointing"]:
        enable = (
            getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
        )  # 5.x name
        enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs = model_inputs(params["arch"], batch, length, device)
    labels = inputs["input_ids"].clone()
    labels[torch.rand(labels.shape, generator=torch.Generator().manual_seed(1)).to(device) > 0.15] = -100
    memory = DeviceMemory(device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if params.get("bf16") else contextlib.nullcontext()

    projection = torch.randn(batch, length, model.config.hidden_size, generator=torch.Generator().manual_seed(2)).to(
        device
    )

    def step() -> None:
        with autocast:
            # The encoder alone (no vocabulary-sized logits) shows what the attention itself costs.
            loss = (
                model(**inputs, labels=labels).loss
                if masked_lm
                else (model(**inputs).last_hidden_state * projection).sum()
            )
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: optimizer state allocated, kernels chosen
    memory.reset()  # from here on: gradients (the same for every model) and activations
    seconds = statistics.median(time_once(step, device) for _ in range(params["repeats"]))
    peak = memory.peak_mb()
    gradients = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) / 2**20
    emit(
        {
            "seconds": seconds,
            "tokens_per_second": batch * length / seconds,
            "peak_mb": peak,
            "activations_mb": max(peak - gradients, 0.0),
        }
    )


if __name__ == "__main__":
    worker_main(measure)
