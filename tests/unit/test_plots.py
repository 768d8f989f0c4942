"""The report's figures and importance, from synthetic trial tables shaped like `search.common.runs_table`'s."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from pictures import check_png

from search.common.trials import outcome, row_dict
from search.reporting import plots, plots_params
from search.reporting.importance import param_importance, rebuild_study

FAMILIES = ("logistic_regression", "random_forest", "svm", "gradient_boosting", "knn", "mlp")
FEATURES = ("basic", "subset", "squared", "pca")
HYPER = {
    "logistic_regression": lambda r: {
        "C": repr(10 ** r.uniform(-3, 3)),
        "class_weight": r.choice(["none", "balanced"]),
    },
    "random_forest": lambda r: {"n_estimators": str(r.integers(10, 300)), "max_features": r.choice(["sqrt", "log2"])},
    "svm": lambda r: {
        "C": repr(10 ** r.uniform(-2, 3)),
        "gamma": repr(10 ** r.uniform(-4, 1)),
        "kernel": "rbf",
        "class_weight": r.choice(["none", "balanced"]),
    },
    "gradient_boosting": lambda r: {
        "learning_rate": repr(10 ** r.uniform(-2, -0.3)),
        "max_iter": str(r.integers(20, 300)),
    },
    "knn": lambda r: {"n_neighbors": str(r.integers(1, 30)), "weights": r.choice(["uniform", "distance"])},
    "mlp": lambda r: {"n_layers": "1", "units_0": str(r.integers(8, 128)), "alpha": repr(10 ** r.uniform(-6, -1))},
}


def synthetic(n: int = 48, families=FAMILIES, features=FEATURES, seed: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """n trials over the families and feature sets; every 11th failed (no metrics), every 13th stopped at fold 2."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        family = families[i % len(families)]
        row = {"run_id": f"r{i}", "run_name": f"t{i}", "trial_index": i, "model": family, "status": "FINISHED",
               "feature_set": features[i % len(features)], "seed": "0", "cv_folds": "5", "error": None}  # fmt: skip
        row.update(HYPER.get(family, lambda r: {"depth": str(r.integers(1, 9))})(rng))
        if i % 11 == 10:
            row.update(status="FAILED", error="ValueError: boom")
        else:
            acc = round((0.93 + 0.04 * rng.random()) * 120) / 120
            row.update(val_accuracy=acc, val_f1=acc - 0.004 * rng.random(), train_accuracy=min(1.0, acc + 0.02),
                       train_f1=min(1.0, acc + 0.01), fit_time_s=10 ** rng.uniform(-3, -1),
                       folds_done=2.0 if i % 13 == 12 else 5.0)  # fmt: skip
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame["trial_index"] = frame["trial_index"].astype("Int64")
    frame["outcome"] = [outcome(row_dict(r)) for _, r in frame.iterrows()]
    fixed = {"run_id", "run_name", "trial_index", "model", "status", "feature_set", "seed", "cv_folds", "error"}
    hyper = sorted({k for r in rows for k in r} - fixed - set(plots.LABELS) - {"folds_done", "outcome"})
    return frame, hyper


def all_figures(frame: pd.DataFrame, hyper: list[str]) -> dict:
    importance = param_importance(rebuild_study(frame, hyper))
    return {
        "model_comparison": plots.model_comparison(frame),
        "all_runs": plots.all_runs_comparison(frame),
        "history": plots.optimization_history(frame),
        "importance": plots_params.param_importance(importance),
        "parallel": plots_params.parallel_coordinates(frame, hyper),
    }


@pytest.mark.parametrize(
    "families, features",
    [(FAMILIES, FEATURES), (("svm",), ("basic",)), (("knn", "extra_trees"), ("pca", "my_features"))],
    ids=["six-families-four-sets", "one-of-each", "unknown-names"],
)
def test_every_figure_decodes_as_a_real_png(tmp_path, families, features):
    frame, hyper = synthetic(30, families, features)
    for name, fig in all_figures(frame, hyper).items():
        check_png(plots.save(fig, tmp_path / f"{name}.png"))


def test_a_lone_complete_trial_still_gives_pictures(tmp_path):
    frame, hyper = synthetic(11)
    frame.loc[1:, ["status", "outcome"]] = ["FAILED", "failed"]
    for name, fig in all_figures(frame, hyper).items():
        check_png(plots.save(fig, tmp_path / f"{name}.png"))


def test_score_axis_is_zoomed_and_failed_trials_sit_in_their_own_strip():
    frame, _ = synthetic(40)
    fig = plots.all_runs_comparison(frame)
    main, strip = fig.axes[0], fig.axes[1]
    low, high = main.get_ylim()
    assert 0.85 < low < 0.93 and 0.97 <= high < 1.01
    n_failed = int((frame["outcome"] == "failed").sum())
    assert sum(len(c.get_offsets()) for c in strip.collections) == n_failed
    assert sum(len(c.get_offsets()) for c in main.collections) == len(frame) - n_failed


@pytest.mark.parametrize("figure", [plots.all_runs_comparison, plots.optimization_history])
def test_the_stopped_marker_is_in_the_legend_only_when_a_stopped_trial_is_drawn(figure):
    """A trial stopped before its first score is a cross in the strip, not a hollow marker: no legend entry for it."""
    frame, _ = synthetic(40)
    stopped = frame["outcome"] == "stopped"
    assert stopped.any()

    def legend(frame):
        return [t.get_text() for t in figure(frame).axes[0].get_legend().get_texts()]

    assert "stopped early" in legend(frame)
    frame.loc[stopped, "val_accuracy"] = np.nan  # cut by the search's end before their first score
    assert "stopped early" not in legend(frame)


def test_score_limits_keep_a_perfect_score_visible():
    low, high = plots.score_limits([0.96, 1.0])
    assert 0.9 < low < 0.96 and high > 1.0
    assert plots.score_limits([]) == (0.0, 1.0)


def test_family_styles_are_stable_across_subsets():
    assert plots.family_styles(["svm"])["svm"] == plots.family_styles(FAMILIES)["svm"]
    styles = plots.family_styles([*FAMILIES, "extra"])
    assert "extra" in styles and len(set(styles.values())) == len(styles)


def test_rebuilt_study_uses_the_space_distributions_and_conditional_names():
    frame, hyper = synthetic(24)
    study = rebuild_study(frame, hyper, choices={"model": list(FAMILIES)})
    complete = frame["outcome"].eq("completed").sum()
    assert len(study.trials) == complete
    svm = next(t for t in study.trials if t.params["model"] == "svm")
    assert svm.distributions["svm/C"] == FloatDistribution(1e-2, 1e3, log=True)
    assert svm.distributions["model"] == CategoricalDistribution(list(FAMILIES))
    assert not any(k.startswith("knn/") for k in svm.params)
    assert study.best_value == frame.loc[frame["outcome"] == "completed", "val_accuracy"].max()


def test_importance_names_its_method_and_conditional_params():
    frame, hyper = synthetic(48)
    importance = param_importance(rebuild_study(frame, hyper))
    assert "PedAnova" in importance.method and importance.n_trials == frame["outcome"].eq("completed").sum()
    assert abs(sum(importance.values.values()) - 1) < 1e-9
    assert "svm/C" in importance.per_family["svm"].values and "svm/C" not in importance.values


def test_importance_declines_with_too_few_or_tied_trials():
    frame, hyper = synthetic(3)
    assert param_importance(rebuild_study(frame, hyper)).values == {}
    frame, hyper = synthetic(20)
    frame["val_accuracy"] = 0.95
    tied = param_importance(rebuild_study(frame, hyper))
    assert tied.values == {} and "same" in tied.note


def test_importing_the_report_modules_neither_loads_pyplot_nor_draws():
    code = (
        "import sys, search.report, search.reporting.plots, search.reporting.plots_params, search.reporting.report_md;"
        "import search.reporting.importance;"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_importance_shares_are_computed_per_set_of_trials_each_with_its_n():
    frame, hyper = synthetic(60)
    frame = frame[(frame["model"] != "svm") | (frame.index < 15)]  # svm keeps 3 completed trials: too few
    importance = param_importance(rebuild_study(frame, hyper))
    done = frame[frame["outcome"] == "completed"]
    assert set(importance.values) == {"model", "feature_set"} and importance.n_trials == len(done)
    for family, imp in importance.per_family.items():
        assert imp.n_trials == (done["model"] == family).sum()
        assert all(p == "feature_set" or p.startswith(f"{family}/") for p in imp.values)
        assert not imp.values or abs(sum(imp.values.values()) - 1) < 1e-9
    assert importance.per_family["svm"].n_trials == 3 and importance.per_family["svm"].values == {}
    fig = plots_params.param_importance(importance)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles[0].startswith(f"all model families: over n={len(done)} ")
    drawn = {t.split(":")[0]: t for t in titles[1:]}
    for family, imp in importance.per_family.items():
        assert (f"n={imp.n_trials} " in drawn[family]) if imp.values else family not in drawn
    assert "no panel for svm (3 completed trial(s)" in fig.axes[-1].get_xlabel()


def test_parallel_categories_are_named_clear_of_the_lines_and_each_line_can_be_counted():
    frame, hyper = synthetic(60)
    fig = plots_params.parallel_coordinates(frame, hyper)
    fig.canvas.draw()
    panels = [ax for sub in fig.subfigs for ax in sub.axes if any(line.get_gid() == "trial" for line in ax.lines)]
    assert len(panels) == 2
    for ax in panels:
        lines = [line for line in ax.lines if line.get_gid() == "trial"]
        names = [t for t in ax.texts if t.get_gid() == "category"]
        assert names or ax is panels[1]  # the best family may have no categorical hyperparameter
        for text in names:
            box = text.get_window_extent()
            for line in lines:
                assert not line.get_transform().transform_path(line.get_path()).intersects_bbox(box, filled=False)
        ticks = ax.get_xticks()
        for i, label in enumerate(t.get_text() for t in ax.get_xticklabels()):
            if label in ("model family", "feature set", "max_features"):
                at_axis = {round(float(np.interp(ticks[i], *line.get_data())), 9) for line in lines}
                assert len(at_axis) == len(lines)  # no two lines drawn onto one point of a categorical axis


def mlp_trials(layers: list[int], seed: int = 1) -> tuple[pd.DataFrame, list[str]]:
    """Completed MLP trials with the given layer counts; the deepest ones score best, so a layer only they have would
    look decisive if it were weighed over every trial."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n_layers in enumerate(layers):
        row = {"run_id": f"r{i}", "run_name": f"t{i}", "trial_index": i, "model": "mlp", "status": "FINISHED",
               "feature_set": FEATURES[i % 2], "seed": "0", "cv_folds": "5", "error": None, "outcome": "completed",
               "n_layers": str(n_layers), "alpha": repr(10 ** rng.uniform(-6, -1)), "fit_time_s": 0.01,
               "val_accuracy": 0.99 - 0.001 * i if n_layers == 3 else 0.90 + 0.05 * rng.random(), "val_f1": 0.9,
               "folds_done": 5.0}  # fmt: skip
        row.update({f"units_{k}": str(rng.integers(8, 128)) for k in range(n_layers)})
        rows.append(row)
    return pd.DataFrame(rows), ["n_layers", "alpha", "units_0", "units_1", "units_2"]


def test_a_hyperparameter_is_weighed_only_over_the_trials_that_have_it():
    frame, hyper = mlp_trials([3, 3] + [2] * 6 + [1] * 12)  # the third layer: 2 trials; the second: 8
    mlp = param_importance(rebuild_study(frame, hyper)).per_family["mlp"]
    assert mlp.n_trials == 20 and mlp.unranked == {"mlp/units_2": 2}
    assert "mlp/units_2" not in mlp.values and "mlp/units_1" in mlp.values and mlp.having == {"mlp/units_1": 8}
    assert abs(sum(mlp.values.values()) - 1) < 1e-9
    from search.reporting.report_md import importance_text

    text = importance_text(param_importance(rebuild_study(frame, hyper)))
    assert "weighed over those trials alone, and ranked only when at least 5 have it" in text
    assert "`mlp/units_1` (n=8 of 20)" in text and "Not ranked, too few trials have them: `mlp/units_2` (mlp: 2" in text
    fig = plots_params.param_importance(param_importance(rebuild_study(frame, hyper)))
    labels = {t.get_text() for ax in fig.axes for t in ax.get_yticklabels()}
    assert "units_1 (n=8)" in labels and "alpha" in labels and not any(x.startswith("units_2") for x in labels)
