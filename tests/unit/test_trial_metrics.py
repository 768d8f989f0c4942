"""The trial's scores, counted with numpy from confusion matrices, are sklearn's own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.model_selection import cross_validate as sklearn_cross_validate

from trainables.data import load_dataset, split_dataset
from trainables.trainable import accuracy_and_macro_f1, confusion, cross_validate, pipeline_for

LR = {"C": 0.3, "class_weight": "none"}
GB = {"learning_rate": 0.0106, "max_iter": 37, "max_leaf_nodes": 21, "l2_regularization": 0.49}


@pytest.mark.parametrize("seed", range(20))
def test_accuracy_macro_f1_and_matrix_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    classes = np.array(["a", "b", "c", "d"]) if seed % 2 else np.array([0, 1, 2, 5])
    y_true = rng.choice(classes[: 2 + seed % 3], size=int(rng.integers(3, 40)))  # some classes absent
    y_pred = rng.choice(classes[rng.integers(0, 2) :], size=len(y_true))  # predictions may use classes never true
    matrix = confusion(y_true, y_pred, classes)
    assert matrix.tolist() == confusion_matrix(y_true, y_pred, labels=classes).tolist()
    accuracy, f1 = accuracy_and_macro_f1(matrix)
    assert accuracy == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
    assert f1 == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)


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
