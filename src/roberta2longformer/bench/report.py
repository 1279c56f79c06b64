"""Markdown tables and PNG plots of benchmark results."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..plots import pyplot, save
from .models import SHAPES

#: A column: its header, and how to show a row's value (a key and a format spec, or a function of the row).
Column = tuple[str, "str | Callable[[dict], str]", str]


def _fmt(value: Any, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _cell(row: dict, how: str | Callable[[dict], str], spec: str) -> str:
    return how(row) if callable(how) else _fmt(row.get(how), spec)


def _table(columns: list[Column], rows: list[dict], identifying: int) -> list[str]:
    """A Markdown table of measured rows; a failed row shows its first ``identifying`` cells and the error."""
    lines = ["| " + " | ".join(header for header, _, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        if "skipped" in r:
            continue
        values = [_cell(r, how, spec) for _, how, spec in columns]
        if "error" in r:
            values = [*values[:identifying], f"failed: {r['error'][:80]}", *[""] * (len(columns) - identifying - 1)]
        lines.append("| " + " | ".join(values) + " |")
    return lines


_STEP = {"mlm": "masked-LM", "encoder": "encoder only"}

CONVERSION_COLUMNS: list[Column] = [
    ("shape", "shape", ""), ("method", "method", ""), ("time (s)", "seconds", ".2f"),
    ("× floor time", "x_floor_time", ".2f"), ("peak RSS (MB)", "peak_rss_mb", ".0f"), ("output (MB)", "output_mb", ".0f"),
    ("peak RSS ÷ output", "rss_x_output", ".2f"),
]  # fmt: skip
STARTUP_COLUMNS: list[Column] = [
    ("whole process", lambda r: f"`{r['case']}`", ""), ("median (s)", "seconds", ".2f"),
    ("× its baseline", "x_baseline", ".2f"), ("runs (s)", lambda r: ", ".join(f"{s:.2f}" for s in r.get("all_seconds", [])), ""),
]  # fmt: skip
INFERENCE_COLUMNS: list[Column] = [
    ("model", "arch", ""), ("batch", "batch", ""), ("length", "length", ""), ("forward (s)", "seconds", ".3f"),
    ("× full attention", "x_full_time", ".2f"), ("first call (s)", "first_seconds", ".3f"), ("peak memory (MB)", "peak_mb", ".0f"),
]  # fmt: skip
PAIRED_COLUMNS: list[Column] = [
    ("model", "arch", ""), ("batch", "batch", ""), ("length", "length", ""), ("fast (s)", "fast_seconds", ".3f"),
    ("floor (s)", "floor_seconds", ".3f"), ("fast ÷ floor (median of rounds)", "x_floor", ".3f"),
    ("rounds", lambda r: ", ".join(f"{x:.3f}" for x in r.get("ratios", [])), ""),
]  # fmt: skip
TRAINING_COLUMNS: list[Column] = [
    ("model", "arch", ""), ("step", lambda r: _STEP[r["head"]], ""),
    ("gradient checkpointing", lambda r: "yes" if r["checkpointing"] else "no", ""),
    ("length × batch", lambda r: f"{r['length']} × {r['batch']}", ""), ("step (s)", "seconds", ".2f"),
    ("tokens/s", "tokens_per_second", ".0f"), ("peak memory (MB)", "peak_mb", ".0f"), ("activations ≈ (MB)", "activations_mb", ".0f"),
]  # fmt: skip


def conversion_table(rows: list[dict]) -> list[str]:
    return _table(CONVERSION_COLUMNS, rows, identifying=2)


def startup_table(rows: list[dict]) -> list[str]:
    return _table(STARTUP_COLUMNS, rows, identifying=1)


def inference_table(rows: list[dict]) -> list[str]:
    return _table(INFERENCE_COLUMNS, rows, identifying=3)


def _paired_lines(section: dict) -> list[str]:
    """The fast backend against its floor measured alternating in one process, below the inference table."""
    rows = section.get("paired")
    if not rows:
        return []
    intro = (
        "The fast backend against its floor in one process, calls alternating (one untimed call of "
        "each, then rounds of one call each): the ratio that the rows above, measured one process "
        "after the other, leave to the machine's load."
    )
    machine = section.get("paired_machine")
    return [
        "",
        intro,
        *(["", machine_line(machine)] if machine else []),
        "",
        *_table(PAIRED_COLUMNS, rows, identifying=3),
    ]


def training_table(rows: list[dict]) -> list[str]:
    return _table(TRAINING_COLUMNS, rows, identifying=4)


def plot_conversion(rows: list[dict], path: Path, max_length: int = 4096) -> Any:
    plt = pyplot()
    ok = [r for r in rows if "error" not in r and r.get("output_mb")]
    shapes = sorted({r["shape"] for r in ok}, key=list(SHAPES).index)
    methods = list(dict.fromkeys(r["method"] for r in ok))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        for ax, key in zip(axes, ("x_floor_time", "rss_x_output")):
            values = [next((r[key] for r in ok if r["shape"] == s and r["method"] == method), 0) for s in shapes]
            ax.bar([j + i * width for j in range(len(shapes))], values, width, label=method)
    for ax, title, limit in zip(axes, ("time ÷ floor (load + save)", "peak RSS ÷ output size"), (1.5, 1.5)):
        ax.axhline(limit, color="black", linestyle="--", linewidth=1, label="target 1.5×")
        ax.set_xticks(
            [j + width * (len(methods) - 1) / 2 for j in range(len(shapes))], [f"{s} → {max_length}" for s in shapes]
        )
        ax.set_title(title)
    handles, labels = axes[0].get_legend_handles_labels()  # below the bars, which it would hide
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 3), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return save(fig, path)


def plot_startup(rows: list[dict], path: Path) -> Any:
    """One panel per comparison, stacked, each case a bar beside its baseline (grey) with its time and ratio."""
    plt = pyplot()
    ok = [r for r in rows if "seconds" in r]
    groups = [
        ("help", "starting the command line"),
        ("convert", "a whole conversion, without verification"),
        ("verify", "a conversion with its verification, against one forward pass"),
    ]
    groups = [(g, t) for g, t in groups if any(r["group"] == g for r in ok)]
    sizes = [sum(r["group"] == g for r in ok) for g, _ in groups]
    fig, axes = plt.subplots(
        len(groups), 1, figsize=(10, 1.2 + 0.75 * sum(sizes)), squeeze=False, gridspec_kw={"height_ratios": sizes}
    )
    for ax, (group, title) in zip(axes[:, 0], groups):
        mine = [r for r in ok if r["group"] == group]
        bars = ax.barh(
            [_wrapped(r["case"], 48) for r in mine],
            [r["seconds"] for r in mine],
            color=["grey" if i == 0 else "tab:blue" for i in range(len(mine))],
        )
        for bar, r in zip(bars, mine):
            ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2,
                    f" {r['seconds']:.2f} s ({r['x_baseline']:.2f}×)", va="center", fontsize=8)  # fmt: skip
        ax.invert_yaxis()
        ax.set_title(title, fontsize=10)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_xlim(0, max((r["seconds"] for r in mine), default=1) * 1.35)
    axes[-1, 0].set_xlabel("seconds, median (grey: the baseline)")
    fig.tight_layout()
    return save(fig, path)


def _wrapped(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(text, width))


def plot_inference(rows: list[dict], path: Path, title: str) -> Any:
    plt = pyplot()
    ok = [r for r in rows if "seconds" in r]
    batches = sorted({r["batch"] for r in ok})
    fig, axes = plt.subplots(2, len(batches), figsize=(5.5 * len(batches), 8), squeeze=False)
    for col, batch in enumerate(batches):
        for arch in dict.fromkeys(r["arch"] for r in ok):
            points = sorted(
                (r["length"], r["seconds"], r["peak_mb"]) for r in ok if r["arch"] == arch and r["batch"] == batch
            )
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
        axes[0][col].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return save(fig, path)


def plot_training(rows: list[dict], path: Path, title: str) -> Any:
    """Speed and memory of each training case, as horizontal bars: their labels stay readable however many."""
    plt = pyplot()
    ok = [r for r in rows if "error" not in r]
    labels = [f"{r['arch']}, {_STEP[r['head']]}{', checkpointing' if r['checkpointing'] else ''}" for r in ok]
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.4 + 0.32 * len(ok)), sharey=True)
    axes[0].barh(labels, [r["tokens_per_second"] for r in ok])
    axes[0].set_title("tokens / s (higher is better)", fontsize=10)
    axes[1].barh(labels, [r["peak_mb"] for r in ok], color="tab:orange")
    axes[1].set_title("peak memory, MB (lower is better)", fontsize=10)
    axes[0].invert_yaxis()
    axes[0].tick_params(axis="y", labelsize=8)
    fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return save(fig, path)


def machine_line(m: dict[str, Any]) -> str:
    return (
        f"Measured on {m['cpu']}, {m['cores']} cores ({m['torch_threads']} torch threads), GPU: {m['gpu'] or 'none'}, "
        f"torch {m['torch']}, transformers {m['transformers']}, Python {m['python']}."
    )


def render_results(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Written by `roberta2longformer bench`; every ratio compares cases measured in the same run on the machine "
        "its section names.",
    ]
    sections = [
        (
            "startup",
            "Startup",
            startup_table,
            "startup.png",
            lambda r: (
                f"Each a whole process, timed from outside: the command line's help against importing transformers, "
                f"and a whole `convert --no-verify` of a {r['shape']}-shaped masked-LM checkpoint to {r['max_length']} "
                "tokens against a process that imports transformers and loads and saves that checkpoint with "
                "safetensors, and the same `convert` with its default verification against one forward pass of "
                "the converted model at its full length through transformers' own Longformer attention (timed "
                f"inside its process, after loading); medians of {r['repeats']} interleaved runs."
            ),
        ),
        (
            "conversion",
            "Conversion",
            conversion_table,
            "conversion.png",
            lambda r: (
                f"Random RoBERTa checkpoints (fp32) converted to {r['max_length']}-token Longformers. The floor reads the "
                "source and writes it once with safetensors. Peak RSS includes the interpreter and libraries "
                "(`import_rss_mb` in results.json)."
            ),
        ),
        (
            "inference",
            "Inference",
            inference_table,
            "inference.png",
            lambda r: (
                f"Forward pass, eval mode, {r['shape']} shape, {r['dtype']}; memory is the growth of peak RSS over the "
                "loaded model on a CPU, the allocator's peak on a GPU. Longformer window 512 (global CLS), BigBird block 64 "
                "with 3 random blocks, Nyströmformer 64 landmarks; extended is RoBERTa with its positions extended (called full-sdpa in "
                "results measured before that target existed)."
            ),
        ),
        (
            "training",
            "Training",
            training_table,
            "training.png",
            lambda r: (
                f"One optimizer step (forward, backward, AdamW), {r['shape']} shape, batch 1, timed after a warm-up step: the masked-LM model, and the encoder alone (a random projection of its output as the loss), where the vocabulary-sized logits do not hide what attention costs. Activations ≈ peak minus the gradients."
            ),
        ),
    ]
    for key, title, table, plot, intro in sections:
        if key not in results:
            continue
        lines += [
            "",
            f"## {title}",
            "",
            intro(results[key]),
            "",
            machine_line(results[key].get("machine", results["machine"])),
            "",
            *table(results[key]["rows"]),
            *_paired_lines(results[key]),
            "",
            f"![{title}]({plot})",
        ]
    return "\n".join(lines) + "\n"
