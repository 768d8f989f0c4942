"""A fold's scores, counted with numpy: scikit-learn's metrics validate their inputs on every call, which costs more
than a cheap trial's fit. Each function gives what its scikit-learn namesake gives (tests/unit/test_trial_metrics.py).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from search.common import contract as c

EPS = np.finfo(np.float64).eps  # log loss clips probabilities to [EPS, 1 - EPS], as scikit-learn does


def confusion(true_codes: np.ndarray, predicted_codes: np.ndarray, n_classes: int) -> np.ndarray:
    """The confusion matrix (rows: true class, columns: predicted) of class codes 0..n_classes-1."""
    n = n_classes
    return np.bincount(np.asarray(true_codes) * n + np.asarray(predicted_codes), minlength=n * n).reshape(n, n)


def accuracy_and_macro_f1(matrix: np.ndarray) -> tuple[float, float]:
    """Accuracy and macro F1 from a confusion matrix, as sklearn's `accuracy_score` and `f1_score(average="macro")`
    compute them (F1 averaged over the classes that occur as true or predicted labels)."""
    hits, true, predicted = np.diag(matrix), matrix.sum(axis=1), matrix.sum(axis=0)
    present = (true + predicted) > 0
    f1 = 2 * hits[present] / (true[present] + predicted[present])
    return float(hits.sum() / matrix.sum()), float(f1.mean())


def balanced_accuracy(matrix: np.ndarray) -> float:
    """The mean recall over the classes that occur as true labels (sklearn's `balanced_accuracy_score`)."""
    true = matrix.sum(axis=1)
    present = true > 0
    return float(np.mean(np.diag(matrix)[present] / true[present]))


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(codes: np.ndarray, scores: np.ndarray, n_classes: int) -> float:
    """ROC AUC: binary from the positive class's score; one-vs-rest macro for more classes (sklearn's
    `roc_auc_score(multi_class="ovr", average="macro")`), over the classes present as both positive and negative."""
    if scores.ndim == 1 or n_classes == 2:
        positive = scores if scores.ndim == 1 else scores[:, 1]
        return _auc(codes == 1, positive)
    aucs = [_auc(codes == k, scores[:, k]) for k in range(n_classes) if 0 < (codes == k).sum() < len(codes)]
    return float(np.mean(aucs))


def log_loss(codes: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean negative log-likelihood of the true classes (sklearn's `log_loss` with every class as a label)."""
    p = np.clip(probabilities[np.arange(len(codes)), codes], EPS, 1 - EPS)
    return float(-np.mean(np.log(p)))


def ranking_scores(pipeline, X, codes: np.ndarray, n_classes: int) -> tuple[dict[str, float], np.ndarray | None]:
    """A fitted classifier's `val_roc_auc` and `val_log_loss` where it was fitted on every one of the `n_classes`
    (a fold short of a class: scores do not line up); and its probabilities, or None."""
    model = pipeline[-1]
    if len(getattr(model, "classes_", ())) != n_classes:
        return {}, None
    if hasattr(model, "predict_proba"):
        probabilities = pipeline.predict_proba(X)
        return {
            c.VAL_ROC_AUC: roc_auc(codes, probabilities, n_classes),
            c.VAL_LOG_LOSS: log_loss(codes, probabilities),
        }, probabilities
    if hasattr(model, "decision_function"):
        return {c.VAL_ROC_AUC: roc_auc(codes, pipeline.decision_function(X), n_classes)}, None
    return {}, None


def fold_scores(pipeline, X_val, val_codes: np.ndarray, n_classes: int, to_codes) -> tuple[dict, np.ndarray]:
    """A fitted Pipeline's validation scores and predicted class codes; a model with probabilities predicts their
    most likely class, as `predict` does for every family here but the SVM, so they are computed once."""
    ranking, probabilities = ranking_scores(pipeline, X_val, val_codes, n_classes)
    if probabilities is not None:
        predicted = np.argmax(probabilities, axis=1)
    else:
        predicted = to_codes(pipeline.predict(X_val))
    matrix = confusion(val_codes, predicted, n_classes)
    scores = dict(zip((c.VAL_ACCURACY, c.VAL_F1), accuracy_and_macro_f1(matrix), strict=True))
    scores[c.VAL_BALANCED_ACCURACY] = balanced_accuracy(matrix)
    return scores | ranking, predicted


def regression_scores(actual: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and R² of predictions (sklearn's `root_mean_squared_error`, `mean_absolute_error`, `r2_score`;
    R² of a constant target: 1 when every prediction hits it, else 0, as scikit-learn gives)."""
    actual, predicted = np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float).ravel()
    error = predicted - actual
    squared, spread = float(np.sum(error**2)), float(np.sum((actual - actual.mean()) ** 2))
    r2 = 1.0 - squared / spread if spread > 0 else float(squared == 0)
    return {c.VAL_RMSE: float(np.sqrt(squared / len(actual))), c.VAL_MAE: float(np.mean(np.abs(error))), c.VAL_R2: r2}
