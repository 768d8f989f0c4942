"""Numbers as targets: the task read off a target, the regression scores against scikit-learn's, every metric's
direction, every family's regressor, and the paired test of two regressors' errors."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error

from search.common import contract as c
from search.common.errors import UsageError
from search.common.pareto import objective
from search.common.trials import rank_trials
from search.releasing.paired import compare_errors
from trainables.data import load_dataset, split_dataset
from trainables.models import REGRESSORS, build_pipeline
from trainables.scoring import regression_scores
from trainables.space import SearchSpace
from trainables.task import detect_task

RNG = np.random.default_rng(0)


@pytest.mark.parametrize(
    "values, asked, task",
    [
        (pd.Series([0, 1, 2, 1, 0] * 20), "auto", c.CLASSIFICATION),  # integer class codes
        (pd.Series([0.0, 1.0, 1.0, 0.0] * 10), "auto", c.CLASSIFICATION),  # codes read as floats
        (pd.Series(["a", "b"] * 10), "auto", c.CLASSIFICATION),
        (pd.Series([True, False] * 10), "auto", c.CLASSIFICATION),
        (pd.Series(RNG.normal(size=50)), "auto", c.REGRESSION),  # a float target
        (pd.Series(np.arange(100)), "auto", c.REGRESSION),  # many whole numbers: a count, a price
        (pd.Series(np.arange(100)), "classification", c.CLASSIFICATION),  # --task overrides
        (pd.Series([0, 1] * 10), "regression", c.REGRESSION),
    ],
)
def test_the_task_is_read_off_the_target_and_overridden(values, asked, task):
    found, reason = detect_task(values.rename("y"), asked)
    assert found == task and reason


def test_regression_of_a_text_target_is_refused_in_one_line():
    with pytest.raises(UsageError, match="--task regression needs a numeric target"):
        detect_task(pd.Series(["a", "b"], name="y"), c.REGRESSION)


def test_a_regression_table_is_split_without_strata_and_keeps_its_numbers():
    data = load_dataset("diabetes")
    split = split_dataset(data, 0.2, 3)
    assert data.task == split.task == c.REGRESSION and split.y_dev.dtype == float
    assert len(split.y_test) == math.ceil(0.2 * len(data.y))


@pytest.mark.parametrize("constant", [False, True])
def test_regression_scores_are_scikit_learns(constant):
    actual = np.full(40, 3.0) if constant else RNG.normal(10, 3, 40)
    predicted = actual + RNG.normal(0, 1, 40)
    ours = regression_scores(actual, predicted)
    assert ours[c.VAL_RMSE] == pytest.approx(root_mean_squared_error(actual, predicted))
    assert ours[c.VAL_MAE] == pytest.approx(mean_absolute_error(actual, predicted))
    assert ours[c.VAL_R2] == pytest.approx(r2_score(actual, predicted))


def test_every_metric_has_its_direction():
    for name in (c.VAL_RMSE, c.VAL_MAE, c.TEST_RMSE, c.TEST_MAE, c.VAL_LOG_LOSS):
        assert c.mode_of(name) == "min" and (not name.startswith("val_") or objective(name).mode == "min")
    for name in (c.VAL_R2, c.TEST_R2, c.VAL_ACCURACY, c.VAL_ROC_AUC):
        assert c.mode_of(name) == "max" and (not name.startswith("val_") or objective(name).mode == "max")
    assert [c.test_metric_for(m) for m in c.REGRESSION_SCORES] == [c.TEST_RMSE, c.TEST_MAE, c.TEST_R2]
    assert {c.task_of_metric(m) for m in c.REGRESSION_SCORES} == {c.REGRESSION}
    rows = [{c.VAL_RMSE: e, c.VAL_MAE: 1.0, c.FIT_TIME_S: 0.1, c.TRIAL_INDEX: i} for i, e in enumerate((5.0, 3.0, 4.0))]
    assert [r[c.TRIAL_INDEX] for r in rank_trials(rows, c.VAL_RMSE)] == [1, 2, 0]  # the lowest error first


def test_every_regressor_fits_its_sampled_configurations_on_a_table():
    data = load_dataset("diabetes")
    space = SearchSpace(list(REGRESSORS), ["basic", "subset", "squared", "pca"], 0, 3, c.REGRESSION)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(24):
        trial = study.ask()
        config = space(trial)
        model = trial.params[c.MODEL]
        hyper = {k.split("/", 1)[1]: v for k, v in trial.params.items() if "/" in k}
        assert config[c.TASK] == c.REGRESSION and "class_weight" not in hyper
        pipeline = build_pipeline(model, trial.params[c.FEATURE_SET], hyper, 0, data.roles, c.REGRESSION)
        predicted = pipeline.fit(data.X.iloc[:200], data.y.iloc[:200]).predict(data.X.iloc[200:260])
        assert predicted.shape == (60,) and np.isfinite(predicted).all()
        seen.add(model)
    assert seen == set(REGRESSORS)


def test_a_classification_space_is_as_before():
    space = SearchSpace(["knn", "svm"], ["basic"], 0, 3)
    trial = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1)).ask()
    assert c.TASK not in space(trial)  # a classifier's trial records no task: its params are what they were


def test_two_regressors_errors_are_told_apart_only_when_they_differ():
    truth = RNG.normal(0, 10, 200)
    close, far = RNG.normal(0, 1, 200), RNG.normal(0, 5, 200)
    better = compare_errors(close, far)
    assert better.new_is_better and better.new_closer > better.holder_closer and better.p_value < 0.05
    same = compare_errors(close, close[::-1])
    assert not same.new_is_better and "Wilcoxon" in same.describe("v2", "v1")
    assert not compare_errors(far, close).new_is_better
    assert truth.shape == close.shape
