"""Small figures the driver and the release log with runs.

The confusion matrix is drawn with Pillow, not matplotlib, whose text layout costs many times more (BENCHMARKS.md,
"Measured once"), in matplotlib's font and colour map so that it looks like the report's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

import numpy as np


@cache
def _font(size: int):
    import matplotlib
    from PIL import ImageFont

    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"), size)


def _text_image(text: str, size: int, angle: int = 0):
    """Black text on a transparent image, turned by `angle` degrees."""
    from PIL import Image, ImageDraw

    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    image = Image.new("RGBA", (right - left + 2, bottom - top + 2), (255, 255, 255, 0))
    ImageDraw.Draw(image).text((1 - left, 1 - top), text, font=font, fill=(0, 0, 0, 255))
    return image.rotate(angle, expand=True) if angle else image


def save_confusion_matrix(matrix: Sequence[Sequence[int]], classes: Sequence, path: Path, title: str) -> Path:
    """Write a confusion-matrix heat map (rows: true class, columns: predicted, counts in the cells) as a PNG."""
    from matplotlib import colormaps
    from PIL import Image, ImageDraw

    matrix = np.asarray(matrix)
    n = len(classes)
    cell = max(30, min(72, 600 // max(n, 1)))
    labels = [str(c) for c in classes]
    turn = max(_font(13).getlength(label) for label in labels) > cell - 6  # x labels turned when they do not fit
    y_labels = [_text_image(label, 13) for label in labels]
    x_labels = [_text_image(label, 13, 45 if turn else 0) for label in labels]
    titles = [_text_image(line, 14) for line in title.splitlines()]
    left = 36 + max(im.width for im in y_labels) + 10
    top = 14 + sum(im.height + 6 for im in titles) + 8
    grid = cell * n
    bottom_labels = max(im.height for im in x_labels)
    width = max(left + grid + 24, max(im.width for im in titles) + 28)
    height = top + grid + 10 + bottom_labels + 36
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    y = 14
    for line in titles:
        image.paste(line, ((width - line.width) // 2, y), line)
        y += line.height + 6
    cmap, peak = colormaps["Blues"], max(int(matrix.max()), 1) if matrix.size else 1
    for (i, j), value in np.ndenumerate(matrix):
        x0, y0 = left + j * cell, top + i * cell
        r, g, b, _ = (int(255 * c) for c in cmap(0.08 + 0.92 * value / peak))
        draw.rectangle((x0, y0, x0 + cell, y0 + cell), fill=(r, g, b))
        if n <= 16:
            text = str(int(value))
            colour = "white" if value > peak / 2 else "black"
            draw.text(
                (x0 + cell / 2, y0 + cell / 2), text, font=_font(13 if cell >= 40 else 11), fill=colour, anchor="mm"
            )
    draw.rectangle((left, top, left + grid, top + grid), outline="black")
    for k, (ylab, xlab) in enumerate(zip(y_labels, x_labels, strict=True)):
        image.paste(ylab, (left - ylab.width - 6, top + k * cell + (cell - ylab.height) // 2), ylab)
        x = left + k * cell + cell // 2 - (xlab.width if turn else xlab.width // 2)
        image.paste(xlab, (x, top + grid + 6), xlab)
    axis_x, axis_y = _text_image("predicted class", 13), _text_image("true class", 13, 90)
    image.paste(axis_x, (left + (grid - axis_x.width) // 2, top + grid + 10 + bottom_labels + 8), axis_x)
    image.paste(axis_y, (10, top + (grid - axis_y.height) // 2), axis_y)
    image.save(path)
    return Path(path)


def save_predicted_actual(actual: Sequence[float], predicted: Sequence[float], path: Path, title: str) -> Path:
    """Write a regressor's figure as a PNG: predicted against actual beside the residuals against the prediction."""
    from matplotlib.figure import Figure

    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    fig = Figure(figsize=(9, 4.2), layout="constrained")  # no pyplot state, as the report's figures
    fit, residuals = fig.subplots(1, 2)
    low, high = (float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max())))
    fit.plot([low, high], [low, high], color="0.6", linewidth=1, label="perfect fit")
    fit.scatter(actual, predicted, s=14, alpha=0.7, color="tab:blue", edgecolors="none")
    fit.set(xlabel="actual", ylabel="predicted", title="predicted against actual")
    fit.legend(loc="upper left", frameon=False)
    residuals.axhline(0, color="0.6", linewidth=1)
    residuals.scatter(predicted, actual - predicted, s=14, alpha=0.7, color="tab:orange", edgecolors="none")
    residuals.set(xlabel="predicted", ylabel="actual − predicted", title="residuals")
    fig.suptitle(title, fontsize=11)
    fig.savefig(path, dpi=100)
    return path
