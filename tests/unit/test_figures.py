"""The parallel-coordinates figure's reading aids: no empty panel, log axes marked and ticked at powers of ten, tick
labels not boxed over the lines, and a colour bar that stays readable when the best trials tie."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from search.reporting import plots_params

TIE = 0.9790640394088669  # the score two wine trials shared


def trials(scores: dict[str, list[float]], seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """Completed trials: `scores[family]` gives each family's validation accuracies, in trial order."""
    rng = np.random.default_rng(seed)
    rows, i = [], 0
    for family, values in scores.items():
        for value in values:
            rows.append({"run_id": f"r{i}", "run_name": f"{i:04d}-{family}", "trial_index": i, "model": family,
                         "feature_set": ("basic", "pca")[i % 2], "status": "FINISHED", "outcome": "completed",
                         "val_accuracy": value, "val_f1": value - 0.002, "train_accuracy": min(1.0, value + 0.01),
                         "fit_time_s": 10 ** rng.uniform(-3, 0), "C": 10 ** rng.uniform(-4, 2),
                         "max_iter": int(rng.integers(50, 300))})  # fmt: skip
            i += 1
    frame = pd.DataFrame(rows)
    frame["trial_index"] = frame["trial_index"].astype("Int64")
    return frame, ["C", "max_iter"]


def drawn(fig):
    FigureCanvasAgg(fig).draw()
    return fig


def colorbars(fig) -> list:
    return [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]


def test_a_best_family_with_one_trial_gets_no_hyperparameter_panel():
    frame, hyper = trials({"svm": [0.99], "knn": [0.95, 0.93, 0.91]})
    fig = drawn(plots_params.parallel_coordinates(frame, hyper))
    assert len(fig.axes) == 1 and not colorbars(fig)  # the upper panel alone: no empty axes, no colour bar
    assert "no hyperparameter panel: the best family, svm, has 1 completed trial" in fig.axes[0].get_title()


def test_a_best_family_with_two_trials_gets_its_panel_and_colour_bar():
    frame, hyper = trials({"svm": [0.99, 0.97], "knn": [0.95]})
    fig = drawn(plots_params.parallel_coordinates(frame, hyper))
    assert len(colorbars(fig)) == 1
    lower = [ax for ax in fig.axes if "Hyperparameters of all 2 completed svm" in ax.get_title()]
    assert len(lower) == 1


def test_a_tie_gives_a_colour_bar_with_plain_values_and_no_offset():
    frame, hyper = trials({"logistic_regression": [TIE, TIE], "knn": [0.95]})
    fig = drawn(plots_params.parallel_coordinates(frame, hyper))
    (bar,) = colorbars(fig)
    assert bar.yaxis.get_offset_text().get_text() == ""
    low, high = (float(x) for x in bar.get_ylim())
    labels = [t.get_text() for t in bar.get_yticklabels() if low <= t.get_position()[1] <= high]
    assert len(labels) >= 2
    assert all(len(label.split(".")[1]) == len(labels[0].split(".")[1]) for label in labels)  # fixed decimals
    assert float(labels[0]) <= TIE <= float(labels[-1])
    assert math.isclose(TIE - low, high - TIE, rel_tol=1e-6)  # padded evenly around the tie


def test_score_norm_pads_a_tie_and_keeps_a_real_range():
    norm, decimals = plots_params.score_norm(pd.Series([TIE, TIE]))
    assert norm.vmin < TIE < norm.vmax and 2 <= decimals <= 5
    norm, _ = plots_params.score_norm(pd.Series([0.9, 0.95, 1.0]))
    assert (norm.vmin, norm.vmax) == (0.9, 1.0)


def test_a_log_axis_is_ticked_at_powers_of_ten_and_labelled_log():
    axis = plots_params.axis_values(pd.Series([3e-4, 0.02, 0.5, 40.0]))
    assert axis.log
    exponents = [math.log10(float(label)) for _, label in axis.ticks]
    assert exponents == [-3, -2, -1, 0, 1]
    frame, hyper = trials({"svm": [0.99, 0.97, 0.96], "knn": [0.95]})
    frame.loc[frame["model"] == "svm", "C"] = [1e-3, 0.5, 80.0]
    fig = drawn(plots_params.parallel_coordinates(frame, hyper))
    lower = next(ax for ax in fig.axes if ax.get_title().startswith("Hyperparameters"))
    names = [t.get_text() for t in lower.get_xticklabels()]
    assert names[0] == "C\n(log)" and "(log)" not in names[1]  # max_iter spans less than a factor of 20


def test_a_narrow_positive_axis_stays_linear_with_its_ends_labelled():
    axis = plots_params.axis_values(pd.Series([0.93, 0.95, 0.975]))
    assert not axis.log
    labels = [label for _, label in axis.ticks]
    assert labels[0] == "0.93" and labels[-1] == "0.975"
    assert all(0.0 <= pos <= 1.0 for pos, _ in axis.ticks)


@pytest.mark.parametrize("families", [{"svm": [0.99, 0.97, 0.9]}, {"svm": [0.99], "knn": [0.9]}])
def test_tick_labels_are_not_boxed_over_the_lines(families):
    frame, hyper = trials(families)
    fig = drawn(plots_params.parallel_coordinates(frame, hyper))
    texts = [t for ax in fig.axes for t in ax.texts]
    assert texts and all(t.get_bbox_patch() is None for t in texts)


def test_tick_label_format_has_no_long_decimals():
    assert [plots_params._fmt(v) for v in (0.05, 12.0, 250.0, 0.00123, 1e-5, 0.975)] == [
        "0.05", "12", "250", "0.00123", "1e-5", "0.975"
    ]  # fmt: skip
