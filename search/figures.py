"""Small figures the driver logs with runs (the report's plots live in `search/plots.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np


def save_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence, path: Path, title: str) -> Path:
    """Write a confusion-matrix heat map (rows: true class, columns: predicted) as a PNG."""
    from matplotlib.figure import Figure

    matrix = np.asarray(matrix)
    n = len(classes)
    size = min(3.2 + 0.45 * n, 9)
    fig = Figure(figsize=(size, size * 0.9), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax, shrink=0.8, label="rows")
    labels = [str(c) for c in classes]
    ax.set_xticks(range(n), labels, rotation=45 if max(map(len, labels)) > 3 else 0, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    threshold = matrix.max() / 2 if matrix.size else 0
    if n <= 12:
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > threshold else "black")
    fig.savefig(path)
    return Path(path)
