"""One check for every figure the tests draw: a real PNG picture, not a blank canvas."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def check_png(path: Path) -> np.ndarray:
    """The PNG's pixels (RGB), asserting it is a picture of plot size with ink and more than 50 colours."""
    from PIL import Image

    with Image.open(path) as image:
        assert image.format == "PNG", path
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 600, path
    assert (pixels < 250).any(axis=2).mean() > 0.02, f"{path} is almost blank"
    rgb = pixels.astype(np.uint32)
    colours = np.unique((rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2])  # a row-wise unique sorts slowly
    assert len(colours) > 50, f"{path} has too few colours for a plot"
    return pixels
