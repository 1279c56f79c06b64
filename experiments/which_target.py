"""Which target? The four encoder targets side by side: speed and memory, and quality before any training.

Speed (``roberta2longformer.bench``'s workers, each measurement in a fresh interpreter, the same machine and
run): random models converted from a RoBERTa of the ``small`` and ``base`` shapes to each target with its
default options — ``extended`` (full attention, SDPA), Longformer (window 512, our fast backend), BigBird
(block 64, 3 random blocks) and Nyströmformer (64 landmarks) — at each length: one forward pass
(batch 1, inference mode) and one masked-LM training step (forward, backward, AdamW), with peak memory
(what the step adds to the process's peak: resident set on CPU, allocated on CUDA; bfloat16 there).

Quality before training (the commands we already have):

- ``evaluate``: bits per character of the built-in Austen RoBERTa (128 positions) converted to each target
  at 1024 tokens, on the held-out novel (Persuasion), beside the source reading 128-token windows;
- ``evaluate-embeddings``: all-MiniLM-L6-v2 converted to each target that a sentence-transformers model can
  become, retrieval of each passage's chapter among the held-out chapters, beside the source.

Run: .venv/bin/python experiments/which_target.py   → docs/which_target.{md,json,png}
(the committed docs/which_target.* come from the command written in docs/which_target.md)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from roberta2longformer.bench.measure import describe, dtype_for, resolve_device
from roberta2longformer.bench.speed import bench_inference, bench_training
from roberta2longformer.plots import pyplot, save
from roberta2longformer.runtime import environment

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from austen import fetch_austen  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CASES = [
    ("extended", "transformers"),
    ("longformer", "fast"),
    ("bigbird", "transformers"),
    ("nystromformer", "transformers"),
]
LABELS = {"extended": "extended (SDPA)", "longformer (fast)": "Longformer (fast)", "bigbird": "BigBird",
          "nystromformer": "Nyströmformer"}  # fmt: skip
COLOURS = {
    "extended": "tab:blue",
    "longformer (fast)": "tab:orange",
    "bigbird": "tab:green",
    "nystromformer": "tab:red",
}
#: Options per target for the quality runs (the built-in model reads 128 tokens: a window that fits it).
BUILTIN_OPTIONS = {"extended": [], "longformer": ["--attention-window", "128"], "bigbird": ["--block-size", "32"],
                   "nystromformer": []}  # fmt: skip


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def speed(shape: str, lengths: list[int], training_lengths: list[int], repeats: int, device: str) -> dict:
    """Forward and training-step rows of every case at every length (a failed case keeps its error)."""
    dtype = dtype_for(device)
    print(f"== {shape}: forward at {lengths}, training at {training_lengths} ({device}, {dtype})", flush=True)
    forward = bench_inference(CASES, shape, lengths, [1], repeats, device, dtype, print) if lengths else []
    training = []
    for length in training_lengths:
        training += bench_training(CASES, shape, length, 1, repeats, device, print, ["mlm"])
    return {"dtype": dtype, "forward": forward, "training": training}


def _cli(*args: str) -> None:
    command = [sys.executable, "-m", "roberta2longformer", *args]
    print("$ roberta2longformer " + " ".join(args), flush=True)
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)


def _refusal(*args: str) -> str | None:
    """The one sentence a command refuses with, or None when it ran."""
    done = subprocess.run([sys.executable, "-m", "roberta2longformer", *args], capture_output=True, text=True)
    return done.stderr.strip().splitlines()[-1] if done.returncode else None


def quality(work: Path, data: Path, max_documents: int, embedding_length: int) -> dict:
    """Bits per character (built-in model) and retrieval (MiniLM) per target, no training."""
    heldout = str(data / "heldout")
    built = {}
    for name, options in BUILTIN_OPTIONS.items():
        built[name] = str(work / f"austen-{name}")
        _cli("convert", "builtin:austen-roberta", built[name], "--to", name, "--max-length", "1024", *options)
    bpc_json = work / "bpc.json"
    _cli("evaluate", "builtin:austen-roberta", *built.values(), "--data", heldout, "--max-documents",
         str(max_documents), "--json", str(bpc_json))  # fmt: skip
    bpc = json.loads(bpc_json.read_text())
    embedded, refused = {}, {}
    for name in BUILTIN_OPTIONS:
        out = work / f"minilm-{name}"
        args = ("convert", "builtin:all-MiniLM-L6-v2", str(out), "--to", name, "--max-length", str(embedding_length))
        why = _refusal(*args)
        if why:
            refused[name] = why
        else:
            embedded[name] = str(out)
    retrieval_json = work / "retrieval.json"
    _cli("evaluate-embeddings", "builtin:all-MiniLM-L6-v2", *embedded.values(), "--data", heldout,
         "--chunks", "mean", "--batch-size", "1", "--json", str(retrieval_json))  # fmt: skip
    return {
        "bpc": bpc,
        "bpc_models": {"builtin:austen-roberta": "source (128), windows of 128", **built},
        "retrieval": json.loads(retrieval_json.read_text()),
        "retrieval_models": {"builtin:all-MiniLM-L6-v2": "source (256)", **embedded},
        "refused": refused,
    }


def add_speed(report: dict, args: argparse.Namespace) -> None:
    """Measure the lengths asked for and put their rows into ``report`` (a row of the same case and length replaced)."""
    started, device = time.time(), resolve_device(args.device)
    asked = {
        "small": (args.small_lengths, args.small_training_lengths),
        "base": (args.base_lengths, args.base_training_lengths),
    }
    for shape, (lengths, training_lengths) in asked.items():
        if not lengths and not training_lengths:
            continue
        found = speed(shape, lengths, training_lengths, args.repeats, device)
        section = report["speed"].setdefault(shape, {"dtype": found["dtype"], "forward": [], "training": []})
        for kind in ("forward", "training"):
            new = {(row["arch"], row.get("length")) for row in found[kind]}
            kept = [row for row in section[kind] if (row["arch"], row.get("length")) not in new]
            section[kind] = sorted(kept + found[kind], key=lambda row: row.get("length") or 0)
    report.setdefault("added_speed", []).append({
        "command": " ".join(["experiments/which_target.py", *sys.argv[1:]]),
        "minutes": round((time.time() - started) / 60, 1),
        "repeats": args.repeats,
    })  # fmt: skip


def run_quality(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="which-target-") as work:
        found = quality(Path(work), fetch_austen(ROOT / ".cache" / "austen"), args.max_documents, args.embedding_length)
    return found | {"embedding_length": args.embedding_length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-lengths", type=_ints, default=[1024, 4096, 8192, 16384])
    parser.add_argument("--small-training-lengths", type=_ints, default=[1024, 4096, 8192, 16384])
    parser.add_argument("--base-lengths", type=_ints, default=[1024, 4096, 8192])
    parser.add_argument("--base-training-lengths", type=_ints, default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (the median is kept)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--max-documents", type=int, default=12, help="held-out chapters the bits per character read")
    parser.add_argument(
        "--embedding-length", type=int, default=2048,
        help="MiniLM converted to this length (transformers' BigBird reads 8704 tokens at ~200 s a chapter on 2 cores)",
    )  # fmt: skip
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--report-only", action="store_true", help="rewrite which_target.md/png from the JSON")
    parser.add_argument(
        "--add-speed", action="store_true",
        help="measure the given lengths only and add their rows to the JSON in --out (the report names both runs)",
    )  # fmt: skip
    parser.add_argument(
        "--quality-only", action="store_true",
        help="rerun only the quality part, keeping the speed tables of the JSON in --out (the report names both runs)",
    )  # fmt: skip
    args = parser.parse_args()
    if args.report_only or args.quality_only or args.add_speed:
        report = json.loads((args.out / "which_target.json").read_text(encoding="utf-8"))
        if args.add_speed:
            add_speed(report, args)
            (args.out / "which_target.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        if args.quality_only:
            started = time.time()
            report["quality"] = run_quality(args)
            report["quality_command"] = " ".join(["experiments/which_target.py", *sys.argv[1:]])
            report["quality_minutes"] = round((time.time() - started) / 60, 1)
            (args.out / "which_target.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        write_report(report, args.out)
        return
    device = resolve_device(args.device)
    started = time.time()
    report = {
        "command": " ".join(["experiments/which_target.py", *sys.argv[1:]]),
        "machine": environment() | {"device": device},
        "repeats": args.repeats,
        "speed": {
            "small": speed("small", args.small_lengths, args.small_training_lengths, args.repeats, device),
            "base": speed("base", args.base_lengths, args.base_training_lengths, args.repeats, device),
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    report["minutes"] = round((time.time() - started) / 60, 1)  # the speed part, kept if the quality part fails
    (args.out / "which_target.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if not args.skip_quality:
        report["quality"] = run_quality(args)
    report["minutes"] = round((time.time() - started) / 60, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "which_target.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_report(report, args.out)


def _memory(row: dict) -> float | None:
    return row.get("peak_mb") or row.get("peak_rss_mb")


def _cell(row: dict | None, baseline: dict | None) -> str:
    """``0.41 s (0.52×), 1.2 GB`` — time, its ratio to the extended model, peak memory; or why there is none."""
    if row is None:
        return "–"
    if "seconds" not in row:
        return "failed (" + describe(row).removeprefix("failed: ")[:60].replace("|", "/") + ")"
    ratio = f" ({row['seconds'] / baseline['seconds']:.2f}×)" if baseline and "seconds" in baseline else ""
    memory = _memory(row)
    return f"{row['seconds']:.3g} s{ratio}, {memory / 1024:.2g} GB" if memory else f"{row['seconds']:.3g} s{ratio}"


def _rows_by(rows: list[dict]) -> dict[tuple[str, int], dict]:
    """(arch, length) → row; a worker that crashed before any length leaves one error row (length unknown)."""
    found = {}
    for row in rows:
        found[(row["arch"], row.get("length"))] = row
    return found


def speed_table(section: dict, kind: str) -> list[str]:
    rows = _rows_by(section[kind])
    lengths = sorted({length for _, length in rows if length})
    archs = list(dict.fromkeys(arch for arch, _ in rows))
    lines = ["| model | " + " | ".join(f"{n:,} tokens" for n in lengths) + " |", "|---" * (len(lengths) + 1) + "|"]
    for arch in archs:
        cells = [_cell(rows.get((arch, n)) or rows.get((arch, None)), rows.get(("extended", n))) for n in lengths]
        lines.append(f"| {LABELS.get(arch, arch)} | " + " | ".join(cells) + " |")
    return lines


def quality_lines(quality: dict) -> list[str]:
    names = {**quality["bpc_models"]}
    lines = [
        "| model (built-in Austen RoBERTa →) | reads | bits per character |",
        "|---|---|---|",
    ]
    for result in quality["bpc"]:
        label = next((k for k, v in names.items() if v == result["model"]), result["model"])
        label = "source" if label == "builtin:austen-roberta" else label
        lines.append(f"| {label} | windows of {result['window']} | {result['bpc']:.3f} |")
    models = quality["retrieval_models"]
    lines += ["", "| model (all-MiniLM-L6-v2 →) | reads | recall@1 | recall@10 | MRR |", "|---|---|---|---|---|"]
    for result in quality["retrieval"]["results"]:
        label = next((k for k, v in models.items() if v == result["model"]), result["model"])
        label = "source" if label == "builtin:all-MiniLM-L6-v2" else label
        overall = result["overall"]
        reads = f"{result['reads']} tokens, {result['mode']}"
        lines.append(
            f"| {label} | {reads} | {overall['recall@1']:.3f} | {overall['recall@10']:.3f} | {overall['mrr']:.3f} |"
        )
    for name, why in quality["refused"].items():
        lines.append(f"| {name} | refused: {why} | – | – | – |")
    return lines


def write_report(report: dict, out: Path) -> None:
    machine = report["machine"]
    lines = [
        "# Which target? Speed, memory and quality before training, side by side",
        "",
        f"Produced by `{report['command']}` in {report['minutes']} min on {machine.get('cpu', 'a CPU')} "
        f"({machine.get('torch_threads', '?')} torch threads, device {machine['device']}, torch "
        f"{machine.get('torch', '?')}, transformers {machine.get('transformers', '?')}); each figure is the median "
        f"of {report['repeats']} timed runs in a fresh interpreter, after a warm-up. Each cell: time, its ratio to "
        "the extended model at the same length, and peak memory: what the measured step adds to the process's peak "
        "(resident set on CPU, the allocator's peak on CUDA; the model's weights, and for training the optimizer "
        "state, were there before and are not counted; on CPU it is the growth of the peak resident set after a "
        "warm-up call, so where the allocator reuses what the warm-up freed it reads near zero: a lower bound). "
        "The machine may be shared: compare the ratios within a table, not absolute times across runs. Targets with their default options: Longformer window 512 on the fast backend, BigBird "
        "block 64 with 3 random blocks, Nyströmformer 64 landmarks.",
        "",
    ]
    for added in report.get("added_speed", []):
        lines += [f"Rows added by a later run on the same machine, `{added['command']}`, in {added['minutes']} min "
                  f"(median of {added['repeats']}; each ratio is to the extended model of the same run: compare ratios, not "
                  "times, between columns of different runs).", ""]  # fmt: skip
    for shape, section in report["speed"].items():
        for kind, title in (("forward", "one forward pass, batch 1"), ("training", "one masked-LM training step")):
            if not section[kind]:
                continue
            lines += [f"## {shape} shape: {title} ({section['dtype']})", "", *speed_table(section, kind), ""]
    if "quality" in report:
        lines += [
            "## Quality before any training",
            "",
            "Bits per character on the held-out novel (Persuasion, masked-LM, `evaluate`; lower is better) and "
            "retrieval of each passage's chapter among Persuasion's chapters (`evaluate-embeddings`, 48-word "
            "passages from each chapter's start, middle and end; higher is better; the converted MiniLMs read "
            f"{report['quality'].get('embedding_length', '?')} tokens of each chapter, the source 256). Each converted model has "
            "its positions tiled and is exact on inputs its source could read; beyond them it is untrained.",
            "",
            *(
                [
                    f"These tables come from a later run, `{report['quality_command']}`, in {report['quality_minutes']} min.",
                    "",
                ]
                if "quality_command" in report
                else []
            ),
            *quality_lines(report["quality"]),
            "",
        ]
    lines += ["![Time and memory per target](which_target.png)", ""]
    (out / "which_target.md").write_text("\n".join(lines), encoding="utf-8")
    plot(report, out / "which_target.png")


def plot(report: dict, path: Path):
    """Per shape: forward time and training-step time as multiples of the extended model's at the same length (a
    ratio within one run: rows added by a later run on a quieter machine keep their place), and peak forward memory,
    against length (log-log)."""
    plt = pyplot()
    shapes = list(report["speed"])
    fig, axes = plt.subplots(len(shapes), 3, figsize=(13, 3.6 * len(shapes)), squeeze=False)
    for row, shape in enumerate(shapes):
        section = report["speed"][shape]
        panels = (("forward", "seconds", "forward pass, × extended's time"),
                  ("training", "seconds", "training step, × extended's time"),
                  ("forward", "memory", "peak memory, forward (GB; ≥ 0.01 shown)"))  # fmt: skip
        for col, (kind, figure, label) in enumerate(panels):
            ax = axes[row][col]
            by_arch: dict[str, list[tuple[int, float]]] = {}
            extended = {r.get("length"): r.get("seconds") for r in section[kind] if r["arch"] == "extended"}
            for r in section[kind]:
                if figure == "seconds":
                    value = r["seconds"] / extended[r["length"]] if "seconds" in r and extended.get(r["length"]) else 0
                else:
                    value = (_memory(r) or 0) / 1024
                if figure == "memory" and value < 0.01:
                    continue  # a lower bound near zero (the allocator reused the warm-up's memory): not a reading
                if r.get("length") and value and "seconds" in r:
                    by_arch.setdefault(r["arch"], []).append((r["length"], value))
            if not by_arch:
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"{shape}: {label}\nnot measured in this run", ha="center", va="center")
                continue
            for arch, points in by_arch.items():
                xs, ys = zip(*sorted(points))
                ax.plot(xs, ys, marker="o", label=LABELS.get(arch, arch), color=COLOURS.get(arch))
            ax.set_xscale("log", base=2)
            lengths = sorted({x for points in by_arch.values() for x, _ in points})
            ax.set_xticks(lengths, [f"{n:,}" for n in lengths])
            ax.minorticks_off()
            ax.set_yscale("log")
            ax.set_xlabel("tokens")
            ax.set_title(f"{shape}: {label}", fontsize=10)
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
    fig.tight_layout()
    return save(fig, path)


if __name__ == "__main__":
    main()
