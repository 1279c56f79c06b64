"""Figures as every command draws them: matplotlib without a screen, saved whole, and checked for text that
leaves the figure or runs into other text (``tests/test_plots.py`` renders every plot and asks)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no screen needed); imported when a plot is drawn, not with the
    command line (half a second of imports)."""
    import matplotlib  # see the docstring: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen

    return plt


def save(fig: Any, path: str | Path, *, dpi: int = 120) -> Any:
    """Save ``fig`` as a PNG at ``path`` whole or not at all (a temporary file renamed over it), close it, and
    return it (its text can still be measured with :func:`text_problems`)."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}.png")
    try:
        fig.savefig(staging, dpi=dpi)
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
        pyplot().close(fig)
    return fig


def text_problems(fig: Any) -> list[str]:
    """Every piece of text of ``fig`` that leaves the figure, or overlaps another piece of text, in words."""
    pyplot()
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # a closed figure gets a canvas again to measure

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    figure_box = fig.bbox
    pieces = [(text.get_text().strip(), text.get_window_extent(renderer)) for text in _drawn_texts(fig)]
    problems = [
        f"{label!r} leaves the figure"
        for label, box in pieces
        if box.x0 < figure_box.x0 - 1
        or box.y0 < figure_box.y0 - 1
        or box.x1 > figure_box.x1 + 1
        or box.y1 > figure_box.y1 + 1
    ]
    for i, (label, box) in enumerate(pieces):
        for other, other_box in pieces[i + 1 :]:
            overlap_x = min(box.x1, other_box.x1) - max(box.x0, other_box.x0)
            overlap_y = min(box.y1, other_box.y1) - max(box.y0, other_box.y0)
            if overlap_x > 1 and overlap_y > 1:
                problems.append(f"{label!r} runs into {other!r}")
    return problems


def _drawn_texts(fig: Any) -> list[Any]:
    """The text artists a drawing of ``fig`` shows: titles, axis labels, the tick labels inside each axis's view,
    legends, annotations (matplotlib keeps labels of ticks beyond the view, and does not draw them)."""
    texts = [*fig.texts, *(t for legend in fig.legends for t in legend.get_texts())]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label, *ax.texts]
        if ax.get_legend() is not None:
            texts += ax.get_legend().get_texts()
        for axis in (ax.xaxis, ax.yaxis):
            low, high = sorted(axis.get_view_interval())
            ticks = [*axis.get_major_ticks(), *axis.get_minor_ticks()]
            texts += [t.label1 for t in ticks if low - 1e-9 <= t.get_loc() <= high + 1e-9 and t.label1.get_visible()]
    unique = {id(t): t for t in texts}  # the figure's texts hold its suptitle already
    return [t for t in unique.values() if t.get_visible() and t.get_text().strip()]
