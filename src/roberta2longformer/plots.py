"""Figures as every command draws them: matplotlib without a screen, saved so that nothing is cut off."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no screen needed); imported when a plot is drawn, not with the
    command line (half a second of imports)."""
    import matplotlib  # see the docstring: only when a plot is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after the backend is chosen

    return plt


def save(fig: Any, path: str | Path, *, dpi: int = 120) -> None:
    """Lay ``fig`` out so that no title, label or legend overlaps another or leaves the figure, save it, close it."""
    plt = pyplot()
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
