"""Averages over runs of rows: the windows of a document (their predictions, their embeddings)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def mean_per_group(values: np.ndarray, groups: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``values``' rows per group, groups in ascending order, and each group's first row
    (one pass: ``groups`` come in runs, as the windows of each document do)."""
    groups = np.asarray(groups)
    if len(groups) > 1 and (np.diff(groups) < 0).any():
        raise ValueError("groups must come in ascending runs")
    _, starts, counts = np.unique(groups, return_index=True, return_counts=True)
    return np.add.reduceat(values, starts, axis=0) / counts[:, None], starts
