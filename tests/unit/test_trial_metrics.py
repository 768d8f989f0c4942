"""The trial's scores, counted with numpy from confusion matrices, are sklearn's own."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, confusion_matrix, f1_score, roc_auc_score
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import cross_validate as sklearn_cross_validate

from trainables.data import load_dataset, split_dataset
from trainables.scoring import accuracy_and_macro_f1, balanced_accuracy, confusion, log_loss, roc_auc
from trainables.trainable import cross_validate, pipeline_for

LR = {"C": 0.3, "class_weight": "none"}
GB = {"learning_rate": 0.0106, "max_iter": 37, "max_leaf_nodes": 21, "l2_regularization": 0.49}


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_macro_f1_and_matrix_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c", "d"]) if seed % 2 else np.array([0, 1, 2, 5])
    y_true = rng.choice(classes[: 2 + seed % 3], size=int(rng.integers(3, 40)))  # some classes absent
    y_pred = rng.choice(classes[rng.integers(0, 2) :], size=len(y_true))  # predictions may use classes never true
    matrix = confusion(np.searchsorted(classes, y_true), np.searchsorted(classes, y_pred), len(classes))
    assert matrix.tolist() == confusion_matrix(y_true, y_pred, labels=classes).tolist()
    accuracy, f1 = accuracy_and_macro_f1(matrix)
    assert accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert f1 == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
    with warnings.catch_warnings():  # sklearn warns of predicted classes never true; the score is the same
        warnings.simplefilter("ignore")
        expected = balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(matrix) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_roc_auc_and_log_loss_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    n_classes = 2 + seed % 3
    codes = np.concatenate([np.arange(n_classes), rng.integers(0, n_classes, size=40)])
    scores = rng.random((len(codes), n_classes))
    probabilities = scores / scores.sum(axis=1, keepdims=True)
    labels = list(range(n_classes))
    if n_classes == 2:
        expected = roc_auc_score(codes, probabilities[:, 1])
    else:
        expected = roc_auc_score(codes, probabilities, multi_class="ovr", average="macro", labels=labels)
    assert roc_auc(codes, probabilities, n_classes) == pytest.approx(expected, abs=1e-12)
    assert log_loss(codes, probabilities) == pytest.approx(sklearn_log_loss(codes, probabilities, labels=labels))
    decision = rng.normal(size=len(codes))  # a binary model's decision function: one column
    if n_classes == 2:
        assert roc_auc(codes, decision, 2) == pytest.approx(roc_auc_score(codes, decision), abs=1e-12)


CASES = [
    ("iris", {"model": "knn", "feature_set": "basic", "knn": {"n_neighbors": 7}}, 2),
    ("wine", {"model": "logistic_regression", "feature_set": "squared", "logistic_regression": LR}, 5),
    # PCA then boosted trees: sensitive to the input's memory layout down to the last bit
    ("breast_cancer", {"model": "gradient_boosting", "feature_set": "pca", "gradient_boosting": GB}, 3),
]


@pytest.mark.parametrize(("dataset", "config", "folds"), CASES, ids=[c[0] for c in CASES])
def test_cross_validation_scores_are_sklearns_on_the_frame(dataset, config, folds):
    """The trial fits arrays and class codes after its first fold; its scores stay exactly those of sklearn's own
    cross-validation of the same Pipeline on the frame and the labels as loaded."""
    split = split_dataset(load_dataset(dataset), 0.2, 0)
    config = {**config, "seed": 0, "cv_folds": folds}
    ours = cross_validate(config, split.X_dev, split.y_dev)
    theirs = sklearn_cross_validate(
        pipeline_for(config, split.X_dev.shape[1]),
        split.X_dev,
        split.y_dev,
        cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=0),
        scoring=["accuracy", "f1_macro"],
        return_train_score=True,
    )
    assert ours["val_accuracy"] == pytest.approx(theirs["test_accuracy"].mean(), abs=1e-12)
    assert ours["val_f1"] == pytest.approx(theirs["test_f1_macro"].mean(), abs=1e-12)
    assert ours["train_accuracy"] == pytest.approx(theirs["train_accuracy"].mean(), abs=1e-12)
    assert ours["train_f1"] == pytest.approx(theirs["train_f1_macro"].mean(), abs=1e-12)
