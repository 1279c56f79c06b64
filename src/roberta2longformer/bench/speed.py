"""Inference and training speed and memory of every architecture, beside full attention."""

from __future__ import annotations

from collections.abc import Sequence

from .measure import describe, run_worker, run_worker_lines
from .models import ARCHITECTURES, FULL_ATTENTION, has_fast_attention


def cases(archs: Sequence[str] = ARCHITECTURES, *, fast: bool = True) -> list[tuple[str, str]]:
    """(architecture, backend) pairs to measure: each as transformers runs it, plus the fast backend and
    its floor (no attention products) for the architectures that have it."""
    measured = [(arch, "transformers") for arch in archs]
    if fast:
        measured += [(arch, backend) for arch in archs if has_fast_attention(arch) for backend in ("fast", "floor")]
    return measured


def arch_label(arch: str, backend: str) -> str:
    return {"fast": f"{arch} (fast)", "floor": f"{arch} floor (no attention products)"}.get(backend, arch)


def bench_inference(archs, shape: str, lengths, batches, repeats: int, device: str, dtype: str, log) -> list[dict]:
    rows = []
    for batch in batches:
        for arch, backend in archs:
            label = arch_label(arch, backend)
            for result in run_worker_lines(
                "inference",
                arch=arch,
                shape=shape,
                lengths=list(lengths),
                batch=batch,
                repeats=repeats,
                device=device,
                dtype=dtype,
                backend=backend,
            ):
                rows.append({"arch": label, "batch": batch, **result})
                log(f"  inference · {label} · batch {batch}: {describe(result)}")
    for row in rows:  # each speed as a ratio to full attention at the same length and batch
        base = next(
            (
                r
                for r in rows
                if r["arch"] == FULL_ATTENTION
                and r["batch"] == row["batch"]
                and r.get("length") == row.get("length")
                and "seconds" in r
            ),
            None,
        )
        if base and "seconds" in row:
            row["x_full_time"] = row["seconds"] / base["seconds"]
    return rows


def bench_paired(archs, shape: str, lengths, batches, repeats: int, device: str, dtype: str, log) -> list[dict]:
    """The fast backend against its floor, alternating in one process (:mod:`.workers.paired`)."""
    rows = []
    for batch in batches:
        for arch in dict.fromkeys(arch for arch, backend in archs if backend == "fast"):
            for result in run_worker_lines(
                "paired", arch=arch, shape=shape, lengths=list(lengths), batch=batch, repeats=repeats,
                device=device, dtype=dtype,
            ):  # fmt: skip
                rows.append({"arch": arch_label(arch, "fast"), "batch": batch, **result})
                log(f"  inference · {arch} fast ÷ floor, alternating · batch {batch}: {describe(result)}")
    return rows


TRAINING_CASES = {"mlm": ("mlm", False), "mlm-checkpointing": ("mlm", True), "encoder": ("encoder", False)}


def bench_training(
    archs,
    shape: str,
    length: int,
    batch: int,
    repeats: int,
    device: str,
    log,
    cases: Sequence[str] = tuple(TRAINING_CASES),
) -> list[dict]:
    rows = []
    for head, checkpointing in (TRAINING_CASES[c] for c in cases):
        for arch, backend in archs:
            if backend == "floor" or (head == "encoder" and not (arch == FULL_ATTENTION or has_fast_attention(arch))):
                continue  # the floor has no attention to train; the encoder rows compare the fast backend's targets
            label = arch_label(arch, backend)
            result = run_worker(
                "training",
                arch=arch,
                shape=shape,
                length=length,
                batch=batch,
                repeats=repeats,
                device=device,
                checkpointing=checkpointing,
                backend=backend,
                head=head,
            )
            rows.append(
                {
                    "arch": label,
                    "head": head,
                    "checkpointing": checkpointing,
                    "length": length,
                    "batch": batch,
                    **result,
                }
            )
            log(f"  training · {label} · {head}{' · checkpointing' if checkpointing else ''}: {describe(result)}")
    return rows
