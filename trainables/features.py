"""Feature sets: each a scikit-learn transformer from the raw columns, so a trial's model is one Pipeline.

- `basic`:   the original columns, unchanged.
- `subset`:  the half of the columns (rounded up) with the highest F-score (ANOVA, or univariate regression),
             learned on the fitted rows; columns constant on them (digits' blank corners) have none and are dropped.
- `squared`: the original columns plus their squares.
- `pca`:     the principal components that keep 95% of the variance of the standardised columns.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from sklearn.base import TransformerMixin
from sklearn.decomposition import PCA
from sklearn.feature_selection import SelectKBest, VarianceThreshold, f_classif, f_regression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from search.common.contract import CLASSIFICATION, REGRESSION


def _basic(n_features: int) -> TransformerMixin:
    return FunctionTransformer(feature_names_out="one-to-one")


def _subset(n_features: int, regression: bool = False) -> TransformerMixin:
    score = f_regression if regression else f_classif
    return make_pipeline(VarianceThreshold(), SelectKBest(score, k=max(1, math.ceil(n_features / 2))))


def _squared(n_features: int) -> TransformerMixin:
    return FeatureUnion(
        [
            ("original", FunctionTransformer(feature_names_out="one-to-one")),
            ("squared", FunctionTransformer(np.square, feature_names_out="one-to-one")),
        ]
    )


def _pca(n_features: int) -> TransformerMixin:
    return make_pipeline(StandardScaler(), PCA(n_components=0.95, svd_solver="full"))


FEATURE_SETS: dict[str, Callable[[int], TransformerMixin]] = {
    "basic": _basic,
    "subset": _subset,
    "squared": _squared,
    "pca": _pca,
}


def make_features(name: str, n_features: int, task: str = CLASSIFICATION) -> TransformerMixin:
    """A fresh, unfitted transformer for feature set `name` on data with `n_features` raw columns."""
    if name not in FEATURE_SETS:
        raise KeyError(f"unknown feature set {name!r}: use one of {sorted(FEATURE_SETS)}")
    if name == "subset":
        return _subset(n_features, regression=task == REGRESSION)
    return FEATURE_SETS[name](n_features)
