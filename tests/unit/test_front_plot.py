"""The Pareto figure draws from trial tables: one family, several, log axes, the released trial marked."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest

from search.common.pareto import front, parse_objectives
from search.reporting.front_plot import axis_label, front_figure, uses_log
from search.reporting.plots import save

matplotlib.use("Agg")
RED = np.array([0xC0, 0x00, 0x00])


def table(families: tuple[str, ...], n: int = 24, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        outcome = "stopped" if i % 7 == 6 else "failed" if i % 11 == 10 else "completed"
        row = {"run_name": f"{i:04d}-{families[i % len(families)]}-basic", "trial_index": i, "outcome": outcome,
               "model": families[i % len(families)], "feature_set": "basic"}  # fmt: skip
        if outcome != "failed":
            row |= {"val_accuracy": 0.85 + 0.14 * rng.random(), "predict_ms": 10 ** rng.uniform(-1, 2),
                    "model_bytes": float(rng.integers(2_000, 9_000))}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def red_pixels(path) -> int:
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB")).astype(int)
    return int((np.abs(pixels - RED).sum(axis=2) < 60).sum())


def test_one_family_draws_and_marks_the_released_trial(tmp_path):
    trials = table(("svm",))
    objectives = parse_objectives("val_accuracy,predict_ms")
    released = front(trials, objectives)[0]["run_name"]
    fig = front_figure(trials, objectives, released=released)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "svm" and f"released: {released}" in legend
    assert any(t.startswith("Pareto front (") for t in legend)
    assert ax.get_xscale() == "log" and "log scale" in ax.get_xlabel() and "lower is better" in ax.get_xlabel()
    assert ax.get_yscale() == "linear" and "higher is better" in ax.get_ylabel()
    assert "left out: 3 stopped early, 2 failed" in ax.get_title()
    with_mark = save(fig, tmp_path / "marked.png")
    without = save(front_figure(trials, objectives), tmp_path / "plain.png")
    assert red_pixels(with_mark) > red_pixels(without) + 200


def test_front_line_passes_through_every_front_point_and_no_stopped_trial_is_drawn():
    trials = table(("svm", "knn", "mlp"), n=40, seed=3)
    objectives = parse_objectives("val_accuracy,model_bytes")
    ax = front_figure(trials, objectives).axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0  # 2-9 kB: less than two decades
    line = next(ln for ln in ax.get_lines() if len(ln.get_xdata()) > 2)
    vertices = set(zip(line.get_xdata(), line.get_ydata(), strict=True))
    for row in front(trials, objectives):
        assert (row["model_bytes"], row["val_accuracy"]) in vertices
    drawn = sum(len(c.get_offsets()) for c in ax.collections[:3])  # one scatter per family
    assert drawn == int((trials["outcome"] == "completed").sum())


def test_no_completed_trial_says_so():
    trials = table(("svm",), n=3).assign(outcome="stopped")
    fig = front_figure(trials, parse_objectives("val_accuracy,predict_ms"))
    assert "no completed trial" in fig.axes[0].texts[0].get_text()


@pytest.mark.parametrize(("values", "log"), [([1, 50], False), ([0.5, 60], True), ([0, 1000], False)])
def test_log_only_beyond_two_decades_of_positive_values(values, log):
    assert uses_log(values) is log


def test_axis_labels_name_unit_and_direction():
    score, ms, size = parse_objectives("val_f1,predict_ms,model_bytes")
    assert axis_label(ms, False) == "predict_ms: CPU ms to predict 1,000 rows (ms, lower is better)"
    assert axis_label(size, True).endswith("(B, lower is better; log scale)")
    assert axis_label(score, False).startswith("validation macro F1 (") and "higher is better" in axis_label(score, 0)


def test_the_released_trial_is_named_where_no_point_is_covered():
    trials = table(("svm", "knn"), n=60)
    objectives = parse_objectives("val_accuracy,predict_ms")
    released = front(trials, objectives)[0]["run_name"]
    fig = front_figure(trials, objectives, released=released)
    fig.canvas.draw()
    ax = fig.axes[0]
    legend = ax.get_legend()
    assert any(released in t.get_text() for t in legend.get_texts())
    points = np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])
    radius = 8  # display pixels: the largest marker's half-width at the figure's dpi
    boxes = [a.get_window_extent() for a in [*ax.texts, legend]]
    for x, y in ax.transData.transform(points):
        for box in boxes:
            assert not (box.x0 - radius < x < box.x1 + radius and box.y0 - radius < y < box.y1 + radius), box
