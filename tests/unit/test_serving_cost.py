"""The serving cost every trial reports: `predict_ms` on 1,000 rows and `model_bytes` of the fitted Pipeline."""

from __future__ import annotations

import time

from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.pipeline import Pipeline

from trainables.data import load_dataset, split_dataset
from trainables.space import config_from_params
from trainables.trainable import cross_validate, time_to_predict

SPLIT = split_dataset(load_dataset("iris"), 0.2, 0)


def config(model: str, **hyper) -> dict:
    return config_from_params({"model": model, "feature_set": "basic", "seed": 0, "cv_folds": 3, **hyper})


def test_every_trial_reports_its_serving_cost():
    small = cross_validate(config("logistic_regression", C=1.0, class_weight="none"), SPLIT.X_dev, SPLIT.y_dev)
    forest = config("random_forest", n_estimators=100, max_depth=20, min_samples_leaf=1, max_features="sqrt")
    large = cross_validate(forest, SPLIT.X_dev, SPLIT.y_dev)
    for metrics in (small, large):
        assert metrics["predict_ms"] > 0 and metrics["model_bytes"] > 0
    assert large["model_bytes"] > 20 * small["model_bytes"]  # 100 trees against a handful of coefficients
    assert large["predict_ms"] > small["predict_ms"]


class Recorder(BaseEstimator, ClassifierMixin):
    """Remembers how many rows it was asked to predict."""

    def fit(self, X, y):
        self.classes_ = sorted(set(y))
        return self

    def predict(self, X):
        self.asked_ = len(X)
        return [self.classes_[0]] * len(X)


def test_predict_ms_times_a_batch_of_1000_rows_from_the_fold():
    pipeline = Pipeline([("model", Recorder())]).fit(SPLIT.X_dev, SPLIT.y_dev)
    assert time_to_predict(pipeline, SPLIT.X_dev.head(24)) >= 0
    assert pipeline[-1].asked_ == 1000


class Sleeper(BaseEstimator, ClassifierMixin):
    """Takes 30 ms of wall time to predict and next to no CPU: what a busy machine does to a cheap model."""

    def fit(self, X, y):
        self.classes_ = sorted(set(y))
        return self

    def predict(self, X):
        time.sleep(0.03)
        return [self.classes_[0]] * len(X)


def test_predict_ms_is_cpu_time_so_waiting_for_the_cpu_does_not_count():
    pipeline = Pipeline([("model", Sleeper())]).fit(SPLIT.X_dev, SPLIT.y_dev)
    assert time_to_predict(pipeline, SPLIT.X_dev) < 10, "30 ms asleep per prediction must not be counted"
