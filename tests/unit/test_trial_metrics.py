"""The trial's scores, counted with numpy from confusion matrices, are sklearn's own."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from trainables.trainable import accuracy_and_macro_f1, confusion


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
