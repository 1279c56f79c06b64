"""``roberta2longformer bench``: conversion, inference and training costs, side by side, with plots.

Every number is measured in this run on this machine, each case in a fresh subprocess (so peak
resident memory belongs to that case alone), and reported next to its baseline from the same
run: the conversion floor (safetensors load + save of the same checkpoint) for conversion, full
attention with extended positions (RoBERTa with SDPA) for inference and training. On a GPU the
same cases run on it, and memory is the CUDA allocator's peak instead of the process's RSS.

Models are random (speed and memory do not depend on the values of the weights), built in the
shapes of roberta-base and roberta-large, or a small shape that makes the default run take a few
minutes on a laptop CPU.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

SHAPES: dict[str, dict[str, int]] = {
    "small": {"hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 1024},
    "base": {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24, "num_attention_heads": 16, "intermediate_size": 4096},
}
VOCAB_SIZE = 50265  # roberta-base's, so the embedding matrix weighs what it weighs there
LSG_PYTHON = Path(".cache/lsg-venv/bin/python")
ARCHITECTURES = ("full-sdpa", "longformer", "bigbird", "nystromformer")


# ------------------------------------------------------------------------------ measuring helpers


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ``ru_maxrss``, not inherited from the
    parent that forked it)."""
    return _status_mb("VmHWM:")


def current_rss_mb() -> float:
    return _status_mb("VmRSS:")


def _status_mb(field: str) -> float:
    """A memory figure from /proc/self/status, or the peak from ``getrusage`` where there is none."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith(field)) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": transformers.__version__, "python": platform.python_version(), "gpu": gpu,
    }


def run_worker_lines(kind: str, python: str | None = None, code: str | None = None, **params: Any) -> list[dict[str, Any]]:
    """Run measurements in a fresh interpreter; each JSON line it prints is one result. A crash
    (e.g. out of memory at the longest length) adds a last row with the error."""
    command = [python or sys.executable]
    command += ["-c", code, json.dumps(params)] if code else ["-m", "roberta2longformer.benchmark", kind, json.dumps(params)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not rows:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        rows.append({"error": " / ".join(tail) or f"exit {done.returncode}"})
    return rows


def run_worker(kind: str, python: str | None = None, code: str | None = None, **params: Any) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its result (or its error)."""
    return run_worker_lines(kind, python, code, **params)[-1]


def _emit(result: dict[str, Any]) -> None:
    print(json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------- conversion


def make_source_checkpoint(directory: Path, shape: str) -> Path:
    """A random RobertaForMaskedLM of ``shape`` with a byte-level BPE tokenizer (vocab.json + merges.txt)."""
    import torch
    import transformers
    from safetensors.torch import save_file
    from tokenizers import Tokenizer
    from transformers.modeling_utils import remove_tied_weights_from_state_dict

    from .convert import instantiate_without_init
    from .loading import resolve_source

    directory.mkdir(parents=True, exist_ok=True)
    config = transformers.RobertaConfig(vocab_size=VOCAB_SIZE, max_position_embeddings=514, **SHAPES[shape])
    meta = instantiate_without_init(transformers.RobertaForMaskedLM, config, meta=True)
    generator = torch.Generator().manual_seed(0)
    tensors = {
        key: torch.empty(tuple(t.shape)).normal_(0.0, 0.02, generator=generator)
        for key, t in remove_tied_weights_from_state_dict(dict(meta.state_dict()), meta).items()
    }
    save_file(tensors, directory / "model.safetensors", metadata={"format": "pt"})
    config.architectures = ["RobertaForMaskedLM"]
    config.save_pretrained(directory)
    # The built-in RoBERTa's tokenizer as vocab.json + merges.txt, which old tokenizers (LSG's) read too.
    Tokenizer.from_file(str(Path(resolve_source("builtin:austen-roberta")) / "tokenizer.json")).model.save(str(directory))
    return directory


def _worker_ours(params: dict[str, Any]) -> None:
    import transformers

    from .streaming import convert_checkpoint

    transformers.logging.set_verbosity_error()
    baseline = peak_rss_mb()
    started = time.perf_counter()
    if params["mode"] == "in-memory":
        from .convert import convert
        from .output import save_conversion

        save_conversion(convert(params["source"], max_length=params["max_length"]), None, params["output"])
        seconds, verify_seconds = time.perf_counter() - started, 0.0
    else:
        written = convert_checkpoint(
            params["source"], params["output"], max_length=params["max_length"], verify=params["verify"],
            smoke=False, progress=False,
        )
        seconds, verify_seconds = written.seconds, written.verify_seconds
    _emit({"seconds": seconds, "verify_seconds": verify_seconds, "peak_rss_mb": peak_rss_mb(), "import_rss_mb": baseline})


#: Each worker prints one JSON line. Peak RSS is read from /proc (VmHWM) with a fallback to
#: ``ru_maxrss``, which a forked child inherits from its parent and so cannot be trusted here.
_RSS = """
import json, resource, sys, time
def rss():
    try:
        return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
params = json.loads(sys.argv[1])
"""

#: The floor: what reading the source and writing it once costs (imports torch and safetensors only).
FLOOR_WORKER = _RSS + """
from pathlib import Path
import torch
from safetensors.torch import load_file, save_file
Path(params["output"]).mkdir(parents=True)
baseline = rss()
started = time.perf_counter()
save_file(load_file(Path(params["source"]) / "model.safetensors"), Path(params["output"]) / "model.safetensors",
          metadata={"format": "pt"})
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": rss(), "import_rss_mb": baseline}))
"""

#: Runs in the LSG converter's own venv (an older transformers); prints the same JSON as our workers.
LSG_WORKER = _RSS + """
import transformers
from lsg_converter import LSGConverter
transformers.logging.set_verbosity_error()
baseline = rss()
started = time.perf_counter()
model, tokenizer = LSGConverter(max_sequence_length=params["max_length"]).convert_from_pretrained(
    params["source"], architecture="RobertaForMaskedLM")
model.save_pretrained(params["output"]); tokenizer.save_pretrained(params["output"])
print(json.dumps({"seconds": time.perf_counter() - started, "peak_rss_mb": rss(), "import_rss_mb": baseline}))
"""


def _dir_size_mb(directory: Path) -> float:
    return sum(p.stat().st_size for p in directory.glob("*.safetensors")) / 2**20


def bench_conversion(shapes: Iterable[str], max_length: int, repeats: int, work: Path, log: Callable[[str], None]) -> list[dict]:
    """Floor, ours (streaming; and in memory), LSG where its venv exists; medians over ``repeats``."""
    rows = []
    for shape in shapes:
        source = make_source_checkpoint(work / f"source-{shape}", shape)
        methods: dict[str, tuple[str, dict[str, Any]]] = {
            "floor (safetensors load + save)": ("floor", {}),
            "ours, streaming": ("ours", {"mode": "streaming", "verify": False}),
            "ours, in memory": ("ours", {"mode": "in-memory"}),
        }
        if LSG_PYTHON.exists():
            methods["LSG converter"] = ("lsg", {})
        results: dict[str, list[dict]] = {name: [] for name in methods}
        names = list(methods)
        for attempt in range(repeats):  # interleaved and rotated, so drifting load hits every method alike
            for name in names[attempt % len(names):] + names[: attempt % len(names)]:
                kind, extra = methods[name]
                _settle()
                output = work / f"out-{shape}-{kind}-{attempt}-{len(results[name])}"
                params = {"source": str(source), "output": str(output), "max_length": max_length, **extra}
                result = run_worker(kind, python=str(LSG_PYTHON) if kind == "lsg" else None,
                                    code={"lsg": LSG_WORKER, "floor": FLOOR_WORKER}.get(kind), **params)
                if "error" not in result:
                    result["output_mb"] = _dir_size_mb(output)
                results[name].append(result)
                log(f"  {shape} {name}: {result}")
                _remove(output)
        _settle()
        verify_run = run_worker("ours", source=str(source), output=str(work / f"verified-{shape}"), max_length=max_length,
                                mode="streaming", verify=True)
        _remove(work / f"verified-{shape}")
        floor_seconds = _median(results["floor (safetensors load + save)"], "seconds")
        for name, runs in results.items():
            ok = [r for r in runs if "error" not in r]
            if not ok:
                rows.append({"shape": shape, "method": name, "error": runs[0]["error"]})
                continue
            seconds, rss, size = _median(ok, "seconds"), _median(ok, "peak_rss_mb"), _median(ok, "output_mb")
            rows.append({
                "shape": shape, "method": name, "seconds": seconds, "x_floor_time": seconds / floor_seconds,
                "peak_rss_mb": rss, "output_mb": size, "rss_x_output": rss / size, "import_rss_mb": _median(ok, "import_rss_mb"),
                "source_mb": _dir_size_mb(source), "runs": len(ok),
            })
        if "error" not in verify_run:
            rows.append({
                "shape": shape, "method": "ours, verification (separate cost)", "seconds": verify_run["verify_seconds"],
                "x_floor_time": verify_run["verify_seconds"] / floor_seconds, "peak_rss_mb": verify_run["peak_rss_mb"],
                "output_mb": None, "rss_x_output": None, "source_mb": _dir_size_mb(source), "runs": 1,
            })
        _remove(source)
    return rows


def _settle() -> None:
    """Flush dirty pages left by the previous case: otherwise the kernel writes them back (and
    throttles writers) during the next case, which then pays for its predecessor's output."""
    if hasattr(os, "sync"):
        os.sync()
    time.sleep(0.5)


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------- inference, training


def build_model(arch: str, shape: str, length: int, *, masked_lm: bool = False, backend: str = "transformers"):
    """A random model of ``arch`` that reads ``length`` tokens: ours converted from a RoBERTa, or
    RoBERTa itself with extended positions and SDPA attention (the full-attention baseline)."""
    import torch
    import transformers

    from .convert import convert

    torch.manual_seed(0)
    config = transformers.RobertaConfig(
        vocab_size=VOCAB_SIZE, max_position_embeddings=514, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        **SHAPES[shape],
    )
    cls = transformers.RobertaForMaskedLM if masked_lm else transformers.RobertaModel
    if arch == "full-sdpa":
        config.max_position_embeddings = length + 2
        return cls._from_config(config, attn_implementation="sdpa")
    source = cls(config)
    options = {
        "longformer": {"attention_window": 512},
        "bigbird": {"block_size": 64, "num_random_blocks": 3},
        "nystromformer": {"num_landmarks": 64},
    }[arch]
    model = convert(source, to=arch, max_length=length, **options).model
    if backend == "fast":
        from . import fast

        fast.enable(model)
    elif backend == "floor":
        floor_attention(model)
    return model


def floor_attention(model) -> None:
    """The speed floor of issue #8: every Longformer layer computes its projections (local, and
    global ones where there are global tokens) but no attention product; the output is the values."""
    import types

    from .fast import _global_slots, _self_attention_modules

    def forward(self, hidden_states, attention_mask=None, is_index_masked=None, is_index_global_attn=None,
                is_global_attn=None, output_attentions=False, **kwargs):
        self.query(hidden_states), self.key(hidden_states)
        output = self.value(hidden_states)
        if is_global_attn:
            slots = _global_slots(is_index_global_attn)
            if slots is not None:
                rows = slots.index[:, :, None].expand(-1, -1, hidden_states.shape[2])
                self.query_global(hidden_states.gather(1, rows))
                self.key_global(hidden_states), self.value_global(hidden_states)
        return (output,)

    for module in _self_attention_modules(model):
        module.forward = types.MethodType(forward, module)


class DeviceMemory:
    """Peak memory of one case: the CUDA allocator's peak on a GPU, else growth of the process's peak RSS."""

    def __init__(self, device: str) -> None:
        import torch

        self.device, self.torch = device, torch

    def reset(self) -> None:
        if self.device == "cuda":
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()
            self.baseline = self.torch.cuda.memory_allocated() / 2**20
            return
        import gc

        gc.collect()
        try:  # "5" resets the peak (VmHWM) to the current RSS (Linux ≥ 4.0)
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")
        except OSError:
            pass
        self.baseline = current_rss_mb()

    def peak_mb(self) -> float:
        if self.device == "cuda":
            self.torch.cuda.synchronize()
            return self.torch.cuda.max_memory_allocated() / 2**20 - self.baseline
        return peak_rss_mb() - self.baseline


def _time_once(fn: Callable[[], Any], device: str) -> float:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started


def _timed(fn: Callable[[], Any], device: str, repeats: int) -> tuple[float, float]:
    """(first call, median of ``repeats`` more) in seconds."""
    first = _time_once(fn, device)
    return first, statistics.median(_time_once(fn, device) for _ in range(repeats))


def _inputs(arch: str, batch: int, length: int, device: str):
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, VOCAB_SIZE, (batch, length), generator=generator)
    ids[:, 0] = 0
    inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    if arch == "longformer":
        inputs["global_attention_mask"] = torch.zeros_like(ids).to(device)
        inputs["global_attention_mask"][:, 0] = 1
    return inputs


def _worker_inference(params: dict[str, Any]) -> None:
    """One architecture, one batch size, lengths ascending (so each length's peak is its own)."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    device = params["device"]
    dtype = getattr(torch, params["dtype"])
    memory = DeviceMemory(device)
    from .errors import ConversionError

    for length in params["lengths"]:
        try:
            model = build_model(params["arch"], params["shape"], length, backend=params["backend"]).to(device, dtype).eval()
        except ConversionError as error:  # e.g. BigBird is full attention below (5 + 2r)·block tokens
            _emit({"length": length, "skipped": str(error)})
            continue
        inputs = _inputs(params["arch"], params["batch"], length, device)
        context = _attention_context(model, params["arch"], length)
        try:
            with torch.inference_mode(), context:
                memory.reset()
                first, seconds = _timed(lambda: model(**inputs), device, params["repeats"])
                peak = memory.peak_mb()
            _emit({"length": length, "seconds": seconds, "first_seconds": first, "peak_mb": peak})
        except (RuntimeError, MemoryError) as error:  # out of memory: longer lengths will not fit either
            _emit({"length": length, "error": str(error).splitlines()[0][:200]})
            return
        del model


def _attention_context(model, arch: str, length: int):
    import contextlib

    if arch == "nystromformer":
        from .nystromformer import attention_regime

        return attention_regime(model, length, model.config.num_landmarks)
    return contextlib.nullcontext()


def _worker_training(params: dict[str, Any]) -> None:
    """One masked-LM optimizer step (forward, backward, AdamW) at one length, timed after a warm-up step."""
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    device, length, batch = params["device"], params["length"], params["batch"]
    masked_lm = params.get("head", "mlm") == "mlm"
    model = build_model(params["arch"], params["shape"], length, masked_lm=masked_lm, backend=params["backend"]).to(device).train()
    if params["checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    inputs = _inputs(params["arch"], batch, length, device)
    labels = inputs["input_ids"].clone()
    labels[torch.rand(labels.shape, generator=torch.Generator().manual_seed(1)).to(device) > 0.15] = -100
    memory = DeviceMemory(device)
    autocast = torch.autocast(device, dtype=torch.bfloat16) if params.get("bf16") else _null()

    projection = torch.randn(batch, length, model.config.hidden_size, generator=torch.Generator().manual_seed(2)).to(device)

    def step() -> None:
        with autocast:
            # The encoder alone (no vocabulary-sized logits) shows what the attention itself costs.
            loss = model(**inputs, labels=labels).loss if masked_lm else (model(**inputs).last_hidden_state * projection).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # warm-up: optimizer state allocated, kernels chosen
    memory.reset()  # from here on: gradients (the same for every model) and activations
    seconds = statistics.median(_time_once(step, device) for _ in range(params["repeats"]))
    peak = memory.peak_mb()
    gradients = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad) / 2**20
    _emit({"seconds": seconds, "tokens_per_second": batch * length / seconds, "peak_mb": peak,
           "activations_mb": max(peak - gradients, 0.0)})


def _null():
    import contextlib

    return contextlib.nullcontext()


def arch_label(arch: str, backend: str) -> str:
    return {"fast": f"{arch} (fast)", "floor": f"{arch} floor (no attention products)"}.get(backend, arch)


def bench_inference(archs, shape: str, lengths, batches, repeats: int, device: str, dtype: str, log) -> list[dict]:
    rows = []
    for batch in batches:
        for arch, backend in archs:
            label = arch_label(arch, backend)
            for result in run_worker_lines("inference", arch=arch, shape=shape, lengths=list(lengths), batch=batch,
                                           repeats=repeats, device=device, dtype=dtype, backend=backend):
                rows.append({"arch": label, "batch": batch, **result})
                log(f"  inference {label} batch {batch}: {result}")
    for row in rows:  # each speed as a ratio to full attention at the same length and batch
        base = next((r for r in rows if r["arch"] == "full-sdpa" and r["batch"] == row["batch"]
                     and r.get("length") == row.get("length") and "seconds" in r), None)
        if base and "seconds" in row:
            row["x_full_time"] = row["seconds"] / base["seconds"]
    return rows


TRAINING_CASES = {"mlm": ("mlm", False), "mlm-checkpointing": ("mlm", True), "encoder": ("encoder", False)}


def bench_training(archs, shape: str, length: int, batch: int, repeats: int, device: str, log,
                   cases: Sequence[str] = tuple(TRAINING_CASES)) -> list[dict]:
    rows = []
    for head, checkpointing in (TRAINING_CASES[c] for c in cases):
        for arch, backend in archs:
            if backend == "floor" or (head == "encoder" and arch not in ("longformer", "full-sdpa")):
                continue  # the floor has no attention to train; the encoder rows compare Longformer backends
            label = arch_label(arch, backend)
            result = run_worker("training", arch=arch, shape=shape, length=length, batch=batch, repeats=repeats,
                                device=device, checkpointing=checkpointing, backend=backend, head=head)
            rows.append({"arch": label, "head": head, "checkpointing": checkpointing, "length": length, "batch": batch, **result})
            log(f"  training {label} {head} checkpointing={checkpointing}: {result}")
    return rows


# ------------------------------------------------------------------------------------ reporting


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _table(headers: list[str], rows: list[dict], cells: Callable[[dict], list[str]], ident: Callable[[dict], list]) -> list[str]:
    """A Markdown table: ``cells(row)`` for measured rows, ``ident(row)`` + the error for failed ones."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        if "skipped" in r:
            continue
        values = cells(r) if "error" not in r else [*map(str, ident(r)), f"failed: {r['error'][:80]}"]
        lines.append("| " + " | ".join([*values, *[""] * (len(headers) - len(values))]) + " |")
    return lines


def conversion_table(rows: list[dict]) -> list[str]:
    return _table(
        ["shape", "method", "time (s)", "× floor time", "peak RSS (MB)", "output (MB)", "peak RSS ÷ output"], rows,
        lambda r: [r["shape"], r["method"], f"{r['seconds']:.2f}", f"{r['x_floor_time']:.2f}", f"{r['peak_rss_mb']:.0f}",
                   _fmt(r["output_mb"], ".0f"), _fmt(r["rss_x_output"], ".2f")],
        lambda r: [r["shape"], r["method"]],
    )


def inference_table(rows: list[dict]) -> list[str]:
    return _table(
        ["model", "batch", "length", "forward (s)", "× full attention", "first call (s)", "peak memory (MB)"], rows,
        lambda r: [r["arch"], str(r["batch"]), str(r["length"]), f"{r['seconds']:.3f}", _fmt(r.get("x_full_time"), ".2f"),
                   f"{r['first_seconds']:.3f}", f"{r['peak_mb']:.0f}"],
        lambda r: [r["arch"], r["batch"], r.get("length", "–")],
    )


_STEP = {"mlm": "masked-LM", "encoder": "encoder only"}


def training_table(rows: list[dict]) -> list[str]:
    return _table(
        ["model", "step", "gradient checkpointing", "length × batch", "step (s)", "tokens/s", "peak memory (MB)",
         "activations ≈ (MB)"], rows,
        lambda r: [r["arch"], _STEP[r["head"]], "yes" if r["checkpointing"] else "no", f"{r['length']} × {r['batch']}",
                   f"{r['seconds']:.2f}", f"{r['tokens_per_second']:.0f}", f"{r['peak_mb']:.0f}", f"{r['activations_mb']:.0f}"],
        lambda r: [r["arch"], _STEP[r["head"]], "yes" if r["checkpointing"] else "no", f"{r['length']} × {r['batch']}"],
    )


def plot_conversion(rows: list[dict], path: Path, max_length: int = 4096) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r and r.get("output_mb")]
    shapes = sorted({r["shape"] for r in ok}, key=list(SHAPES).index)
    methods = list(dict.fromkeys(r["method"] for r in ok))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        for ax, key in zip(axes, ("x_floor_time", "rss_x_output")):
            values = [next((r[key] for r in ok if r["shape"] == s and r["method"] == method), 0) for s in shapes]
            ax.bar([j + i * width for j in range(len(shapes))], values, width, label=method)
    for ax, title, limit in zip(axes, ("time ÷ floor (load + save)", "peak RSS ÷ output size"), (1.5, 1.5)):
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label="target 1.5×")
        ax.set_xticks([j + width * (len(methods) - 1) / 2 for j in range(len(shapes))], [f"{s} → {max_length}" for s in shapes])
        ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()  # below the bars, which it would hide
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_inference(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "seconds" in r]
    batches = sorted({r["batch"] for r in ok})
    fig, axes = plt.subplots(2, len(batches), figsize=(5.5 * len(batches), 8), squeeze=False)
    for col, batch in enumerate(batches):
        for arch in dict.fromkeys(r["arch"] for r in ok):
            points = sorted((r["length"], r["seconds"], r["peak_mb"]) for r in ok if r["arch"] == arch and r["batch"] == batch)
            if not points:
                continue
            lengths, seconds, memory = zip(*points)
            axes[0][col].plot(lengths, seconds, marker="o", label=arch)
            axes[1][col].plot(lengths, memory, marker="o", label=arch)
        for row, ylabel in enumerate(("forward (s)", "peak memory (MB)")):
            ax = axes[row][col]
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xlabel("sequence length")
            ax.set_ylabel(ylabel)
            ax.set_title(f"batch {batch}")
            ax.grid(True, which="both", alpha=0.3)
        axes[0][col].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_training(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in rows if "error" not in r]
    labels = [f"{r['arch']}\n{_STEP[r['head']]}{', ckpt' if r['checkpointing'] else ''}" for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].bar(labels, [r["tokens_per_second"] for r in ok])
    axes[0].set_title("tokens / s (higher is better)")
    axes[1].bar(labels, [r["peak_mb"] for r in ok])
    axes[1].set_title("peak memory, MB (lower is better)")
    for ax in axes:
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_bench(
    parts: list[str], output: Path, *, shapes: list[str], max_length: int, repeats: int, lengths: list[int],
    batches: list[int], model_shape: str, training_length: int, device: str, fast: bool, log: Callable[[str], None],
    archs: Sequence[str] = ARCHITECTURES, training_cases: Sequence[str] = tuple(TRAINING_CASES),
) -> dict[str, Any]:
    """Run the chosen benchmarks and write ``results.md``, ``results.json`` and PNG plots to ``output``."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    output.mkdir(parents=True, exist_ok=True)
    results_path = output / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    results["machine"] = machine() | {"device": device}
    cases = [(arch, "transformers") for arch in archs]
    cases += [("longformer", "fast"), ("longformer", "floor")] if fast and "longformer" in archs else []
    dtype = "bfloat16" if device == "cuda" else "float32"
    with tempfile.TemporaryDirectory(prefix="r2l-bench-") as work:
        if "conversion" in parts:
            log(f"Conversion to {max_length} tokens ({', '.join(shapes)}; {repeats} runs each)")
            results["conversion"] = {"max_length": max_length, "rows": bench_conversion(shapes, max_length, repeats, Path(work), log)}
            plot_conversion(results["conversion"]["rows"], output / "conversion.png", results["conversion"]["max_length"])
        if "inference" in parts:
            log(f"Inference ({model_shape} shape, {device}, {dtype})")
            rows = bench_inference(cases, model_shape, lengths, batches, repeats, device, dtype, log)
            results["inference"] = {"shape": model_shape, "dtype": dtype, "rows": rows}
            plot_inference(rows, output / "inference.png", f"forward, eval mode, {model_shape} shape, {device} {dtype}")
        if "training" in parts:
            log(f"Training step ({model_shape} shape, {training_length} tokens, {device})")
            rows = bench_training(cases, model_shape, training_length, 1, repeats, device, log, training_cases)
            results["training"] = {"shape": model_shape, "rows": rows}
            plot_training(rows, output / "training.png", f"masked-LM step at {training_length} tokens, {model_shape} shape, {device}")
    results_path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    (output / "results.md").write_text(render_results(results), encoding="utf-8")
    log(f"Wrote {output / 'results.md'}, {results_path.name} and the plots")
    return results


def render_results(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `roberta2longformer bench`; every ratio compares cases measured in the same run on this machine:",
        f"{m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), GPU: {m['gpu'] or 'none'}, "
        f"torch {m['torch']}, transformers {m['transformers']}, Python {m['python']}.",
    ]
    sections = [
        ("conversion", "Conversion", conversion_table, "conversion.png",
         lambda r: f"Random RoBERTa checkpoints (fp32) converted to {r['max_length']}-token Longformers. The floor reads the "
                   "source and writes it once with safetensors. Peak RSS includes the interpreter and libraries "
                   "(`import_rss_mb` in results.json)."),
        ("inference", "Inference", inference_table, "inference.png",
         lambda r: f"Forward pass, eval mode, {r['shape']} shape, {r['dtype']}; memory is the growth of peak RSS over the "
                   "loaded model on a CPU, the allocator's peak on a GPU. Longformer window 512 (global CLS), BigBird block 64 "
                   "with 3 random blocks, Nyströmformer 64 landmarks; full-sdpa is RoBERTa with its positions extended."),
        ("training", "Training", training_table, "training.png",
         lambda r: f"One optimizer step (forward, backward, AdamW), {r['shape']} shape, batch 1, timed after a warm-up step: the masked-LM model, and the encoder alone (a random projection of its output as the loss), where the vocabulary-sized logits do not hide what attention costs. Activations ≈ peak minus the gradients."),
    ]
    for key, title, table, plot, intro in sections:
        if key not in results:
            continue
        lines += ["", f"## {title}", "", intro(results[key]), "", *table(results[key]["rows"]), "", f"![{title}]({plot})"]
    return "\n".join(lines) + "\n"


WORKERS = {"ours": _worker_ours, "inference": _worker_inference, "training": _worker_training}

if __name__ == "__main__":
    WORKERS[sys.argv[1]](json.loads(sys.argv[2]))
