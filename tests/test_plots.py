"""Every plot a command draws is readable: no title, label or value leaves the figure or runs into other text.

Drawn from the committed benchmark results (every section, as ``bench`` and ``scripts/plot_benchmarks.py`` draw
them) and from a retrieval result, then measured with :func:`roberta2longformer.plots.text_problems`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from roberta2longformer.bench import report
from roberta2longformer.plots import text_problems
from roberta2longformer.train.queries import Query
from roberta2longformer.train.retrieval import Ranking, by_place, metrics
from roberta2longformer.train.retrieval import plot as plot_retrieval

ROOT = Path(__file__).resolve().parents[1]
RESULTS = [ROOT / "docs" / "benchmarks" / "results.json", ROOT / "docs" / "benchmarks" / "base" / "results.json"]


def _figures(results: dict, out: Path):
    if "startup" in results:
        yield "startup", report.plot_startup(results["startup"]["rows"], out / "startup.png")
    if "conversion" in results:
        yield "conversion", report.plot_conversion(results["conversion"]["rows"], out / "conversion.png", 4096)
    if results.get("inference", {}).get("rows"):
        yield (
            "inference",
            report.plot_inference(results["inference"]["rows"], out / "inference.png", "forward, a title"),
        )
    if results.get("training", {}).get("rows"):
        yield "training", report.plot_training(results["training"]["rows"], out / "training.png", "training, a title")


@pytest.mark.parametrize("results", RESULTS, ids=lambda p: p.parent.name)
def test_every_benchmark_plot_keeps_its_text_inside_and_apart(results, tmp_path):
    drawn = dict(_figures(json.loads(results.read_text()), tmp_path))
    assert drawn
    problems = {name: text_problems(fig) for name, fig in drawn.items()}
    assert problems == dict.fromkeys(drawn, [])
    assert all((tmp_path / f"{name}.png").stat().st_size > 10_000 for name in drawn)


def test_the_retrieval_plot_has_a_title_and_each_place_its_query_count(tmp_path):
    import numpy as np

    queries = [Query("q", i % 4, place) for i, place in enumerate(["start", "middle", "end"] * 4)]
    ranks = np.array([1, 2, 1, 5, 1, 1, 3, 1, 1, 12, 1, 2])
    rows = [
        Ranking(name, mode, 256, len(queries), metrics(ranks), by_place(ranks, queries, [None] * len(queries)))
        for name, mode in (("builtin:all-MiniLM-L6-v2", "windows averaged"), ("out/minilm-4096-long-name", "whole"))
    ]
    fig = plot_retrieval(rows, tmp_path / "retrieval.png")
    assert text_problems(fig) == []
    texts = [t.get_text() for t in fig.findobj(match=lambda a: type(a).__name__ == "Text")]
    assert any("12 queries" in t for t in texts) and any("(n=4)" in t for t in texts)


def test_the_synthetic_task_plot_labels_each_length(tmp_path):
    import numpy as np

    from roberta2longformer.train.retrieval import plot_synthetic

    results = [
        (length, Ranking(name, mode, 256, 4, metrics(np.array(ranks)), {}))
        for length, ranks in ((256, [1, 1, 2, 1]), (1024, [1, 3, 2, 9]), (4096, [5, 3, 2, 9]))
        for name, mode in (("builtin:all-MiniLM-L6-v2", "whole"), ("out/minilm-4096", "best late chunk"))
    ]
    fig = plot_synthetic(results, "passkey", tmp_path / "passkey.png")
    assert text_problems(fig) == []
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == ["256", "1,024", "4,096"]


def test_retrieval_plots_keep_their_axes_and_title_with_many_long_method_names(tmp_path):
    # A report's 14 methods, named as experiments/long_embeddings.py names them: beside the axes, such a legend
    # squeezed them to a sliver and pushed the title off the figure.
    import numpy as np

    from roberta2longformer.train.retrieval import plot_synthetic

    queries = [Query("q", i % 4, place) for i, place in enumerate(["start", "middle", "end"] * 4)]
    ranks = np.array([1, 2, 1, 5, 1, 1, 3, 1, 1, 12, 1, 2])
    names = [
        f"→ Longformer 8704, tile-trained, position rows beyond 256 trained on 256-token documents ({i})"
        for i in range(14)
    ]
    rows = [Ranking(name, "", 8704, 12, metrics(ranks), by_place(ranks, queries, [None] * 12)) for name in names]
    synthetic = [(n, Ranking(name, "", 8704, 12, metrics(ranks), {})) for n in (256, 4096) for name in names]
    for fig in (plot_retrieval(rows, tmp_path / "places.png"), plot_synthetic(synthetic, "needle", tmp_path / "n.png")):
        assert text_problems(fig) == []
        assert fig.axes[0].get_position().width > 0.7  # the axes keep most of the width
        assert len({line.get_color() for line in fig.axes[0].get_lines()}) == 14
