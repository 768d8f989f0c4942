"""The Tune trainable: one trial is a stratified k-fold cross-validation of one Pipeline on the development part."""

from __future__ import annotations

import json
import socket
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import StratifiedKFold

from trainables.models import build_pipeline
from trainables.space import hyperparams_of


def pipeline_for(config: dict[str, Any], n_features: int):
    """The unfitted Pipeline a trial config describes."""
    return build_pipeline(config["model"], config["feature_set"], hyperparams_of(config), config["seed"], n_features)


def confusion(y_true, y_pred, classes: np.ndarray) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted) over sorted `classes`, counted with numpy:
    sklearn's metrics validate their inputs on every call, which costs more than a cheap trial's fit."""
    n = len(classes)
    true, pred = np.searchsorted(classes, np.asarray(y_true)), np.searchsorted(classes, np.asarray(y_pred))
    return np.bincount(true * n + pred, minlength=n * n).reshape(n, n)


def accuracy_and_macro_f1(matrix: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro F1 from a confusion matrix, as sklearn's `accuracy_score` and `f1_score(average="macro")`
    compute them (F1 averaged over the classes that occur as true or predicted labels)."""
    hits, true, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    present = (true + predicted) > 0
    f1 = 2 * hits[present] / (true[present] + predicted[present])
    return float(hits.sum() / matrix.sum()), float(f1.mean())


def cross_validate(config: dict[str, Any], X: pd.DataFrame, y: pd.Series, on_fold=None) -> dict[str, Any]:
    """Cross-validate the config's Pipeline; `on_fold(running_metrics)` is called after each fold but the last.

    Returns mean validation and training accuracy and macro F1, the mean fit time of one fold, the serving cost
    (`predict_ms`: median over the folds of the milliseconds to predict 1,000 rows drawn from the fold's validation
    rows; `model_bytes`: the fitted Pipeline serialised as the release stores it, cloudpickle), and the confusion
    matrix of the out-of-fold predictions (rows: true class, columns: predicted, classes sorted).
    """
    folds = StratifiedKFold(n_splits=config["cv_folds"], shuffle=True, random_state=config["seed"])
    classes = np.asarray(sorted(pd.unique(y).tolist()))
    scores: dict[str, list[float]] = {k: [] for k in ("val_accuracy", "val_f1", "train_accuracy", "train_f1")}
    fit_times: list[float] = []
    predict_ms: list[float] = []
    model_bytes = 0
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for i, (train_idx, val_idx) in enumerate(folds.split(X, y)):
        pipeline = pipeline_for(config, X.shape[1])
        X_train, y_train, X_val, y_val = X.iloc[train_idx], y.iloc[train_idx], X.iloc[val_idx], y.iloc[val_idx]
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(X_train, y_train)
        fit_times.append(time.perf_counter() - start)
        val = confusion(y_val, pipeline.predict(X_val), classes)
        train = confusion(y_train, pipeline.predict(X_train), classes)
        for part, counts in (("val", val), ("train", train)):
            accuracy, f1 = accuracy_and_macro_f1(counts)
            scores[f"{part}_accuracy"].append(accuracy)
            scores[f"{part}_f1"].append(f1)
        matrix += val
        predict_ms.append(time_to_predict(pipeline, X_val))
        model_bytes = model_bytes or serialised_size(pipeline)
        cost = {"predict_ms": float(np.median(predict_ms)), "model_bytes": float(model_bytes)}
        if on_fold is not None and i + 1 < folds.n_splits:
            running = {k: float(np.mean(v)) for k, v in scores.items()}
            on_fold({**running, **cost, "fit_time_s": float(np.mean(fit_times)), "folds_done": i + 1})
    metrics: dict[str, Any] = {k: float(np.mean(v)) for k, v in scores.items()}
    metrics.update(cost)
    metrics["fit_time_s"] = float(np.mean(fit_times))
    metrics["folds_done"] = len(fit_times)
    metrics["confusion_matrix"] = json.dumps(matrix.tolist())
    return metrics


def time_to_predict(pipeline, X_val: pd.DataFrame, rows: int = 1000) -> float:
    """Milliseconds the fitted Pipeline takes to predict `rows` rows cycled from the validation rows."""
    batch = X_val.iloc[np.resize(np.arange(len(X_val)), rows)]
    start = time.perf_counter()
    pipeline.predict(batch)
    return 1000 * (time.perf_counter() - start)


def serialised_size(pipeline) -> int:
    """Bytes of the fitted Pipeline serialised as the release logs it: MLflow's sklearn flavour writes `model.pkl`
    with cloudpickle at pickle's default protocol."""
    import pickle

    import cloudpickle

    return len(cloudpickle.dumps(pipeline, protocol=pickle.DEFAULT_PROTOCOL))


def where_am_i() -> dict[str, str]:
    """The Ray node (id) and host this code runs on."""
    import ray

    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    return {"node": node, "hostname": socket.gethostname()}


def train_trial(config: dict[str, Any], X: pd.DataFrame, y: pd.Series, report_folds: bool = False) -> None:
    """Tune function trainable; bind the development part with `tune.with_parameters(train_trial, X=..., y=...)`.

    With `report_folds` every fold is an iteration that reports the running means, so a scheduler such as
    ASHA can stop a hopeless configuration after a fold or two; otherwise the trial reports once.
    """
    from ray import tune

    node = where_am_i()
    on_fold = (lambda running: tune.report({**running, **node})) if report_folds else None
    metrics = cross_validate(config, X, y, on_fold=on_fold)
    tune.report({**metrics, **node})
