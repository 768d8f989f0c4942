"""Model families: each samples its own hyperparameters from an Optuna trial and builds its estimator, a classifier
(`MODEL_FAMILIES`) or a regressor (`REGRESSORS`) from the same space less the class weights."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import optuna
from sklearn.base import BaseEstimator
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR

from search.common.contract import CLASSIFICATION, MODEL, REGRESSION
from trainables.columns import NUMERIC, Roles
from trainables.features import make_features
from trainables.prepare import TEXT_CHOICES, ChunkedScaler, native_category_names, preparation

Params = dict[str, Any]


@dataclass(frozen=True)
class ModelFamily:
    """A model family: how to sample its hyperparameters and how to build it from them."""

    suggest: Callable[[optuna.Trial, str], Params]
    build: Callable[[Params, int], BaseEstimator]
    needs_scaling: bool
    native_categories: bool = False  # takes categories as they are (ordinal codes it is told are categories)


def _weight(hp: Params) -> Params:
    """The hyperparameters with `class_weight` as scikit-learn takes it ("none" is None)."""
    weight = hp.get("class_weight", "none")
    return {**hp, "class_weight": None if weight == "none" else weight}


def _suggest_logistic(t: optuna.Trial, p: str) -> Params:
    return {
        "C": t.suggest_float(f"{p}/C", 1e-3, 1e3, log=True),
        "class_weight": t.suggest_categorical(f"{p}/class_weight", ["none", "balanced"]),
    }


def _build_logistic(hp: Params, seed: int) -> BaseEstimator:
    return LogisticRegression(**_weight(hp), max_iter=2000, random_state=seed)


def _suggest_forest(t: optuna.Trial, p: str, weighted: bool = True) -> Params:
    hp = {
        "n_estimators": t.suggest_int(f"{p}/n_estimators", 10, 300, log=True),
        "max_depth": t.suggest_int(f"{p}/max_depth", 2, 20),
        "min_samples_leaf": t.suggest_int(f"{p}/min_samples_leaf", 1, 10),
        "max_features": t.suggest_categorical(f"{p}/max_features", ["sqrt", "log2"]),
    }
    if weighted:  # "balanced" is left out: scikit-learn 1.9 refuses it for labels that read as numbers ("0".."9")
        hp["class_weight"] = t.suggest_categorical(f"{p}/class_weight", ["none", "balanced_subsample"])
    return hp


def _build_forest(hp: Params, seed: int) -> BaseEstimator:
    return RandomForestClassifier(**_weight(hp), n_jobs=1, random_state=seed)


def _suggest_svm(t: optuna.Trial, p: str, weighted: bool = True) -> Params:
    hp = {
        "C": t.suggest_float(f"{p}/C", 1e-2, 1e3, log=True),
        "gamma": t.suggest_float(f"{p}/gamma", 1e-4, 1e1, log=True),
        "kernel": t.suggest_categorical(f"{p}/kernel", ["rbf", "sigmoid"]),
    }
    if weighted:
        hp["class_weight"] = t.suggest_categorical(f"{p}/class_weight", ["none", "balanced"])
    else:  # the margin of the tube, in standard deviations of the target (it is standardised for the fit)
        hp["epsilon"] = t.suggest_float(f"{p}/epsilon", 1e-3, 1.0, log=True)
    return hp


def _build_svm(hp: Params, seed: int) -> BaseEstimator:
    return SVC(**_weight(hp), random_state=seed)


def _suggest_boosting(t: optuna.Trial, p: str, weighted: bool = True) -> Params:
    hp = {
        "learning_rate": t.suggest_float(f"{p}/learning_rate", 0.01, 0.5, log=True),
        "max_iter": t.suggest_int(f"{p}/max_iter", 20, 300, log=True),
        "max_leaf_nodes": t.suggest_int(f"{p}/max_leaf_nodes", 4, 64, log=True),
        "l2_regularization": t.suggest_float(f"{p}/l2_regularization", 1e-6, 1.0, log=True),
    }
    if weighted:
        hp["class_weight"] = t.suggest_categorical(f"{p}/class_weight", ["none", "balanced"])
    return hp


def _build_boosting(hp: Params, seed: int) -> BaseEstimator:
    return HistGradientBoostingClassifier(**_weight(hp), early_stopping=False, random_state=seed)


def _suggest_knn(t: optuna.Trial, p: str) -> Params:
    return {
        "n_neighbors": t.suggest_int(f"{p}/n_neighbors", 1, 30),
        "weights": t.suggest_categorical(f"{p}/weights", ["uniform", "distance"]),
        "p": t.suggest_int(f"{p}/p", 1, 2),
    }


def _build_knn(hp: Params, seed: int) -> BaseEstimator:
    return KNeighborsClassifier(**hp)


def _suggest_mlp(t: optuna.Trial, p: str) -> Params:
    hp: Params = {"n_layers": t.suggest_int(f"{p}/n_layers", 1, 3)}
    for i in range(hp["n_layers"]):
        hp[f"units_{i}"] = t.suggest_int(f"{p}/units_{i}", 8, 128, log=True)
    hp["alpha"] = t.suggest_float(f"{p}/alpha", 1e-6, 1e-1, log=True)
    hp["learning_rate_init"] = t.suggest_float(f"{p}/learning_rate_init", 1e-4, 1e-1, log=True)
    return hp


def _build_mlp(hp: Params, seed: int) -> BaseEstimator:
    layers = tuple(int(hp[f"units_{i}"]) for i in range(int(hp["n_layers"])))
    return MLPClassifier(
        hidden_layer_sizes=layers,
        alpha=hp["alpha"],
        learning_rate_init=hp["learning_rate_init"],
        max_iter=500,
        random_state=seed,
    )


def _suggest_ridge(t: optuna.Trial, p: str) -> Params:
    return {"alpha": t.suggest_float(f"{p}/alpha", 1e-4, 1e3, log=True)}


def _scaled_target(regressor: BaseEstimator) -> TransformedTargetRegressor:
    """A regressor fitted to the standardised target, predictions back in its units: SVR's margin and an MLP's
    steps are tuned for values of about unit spread."""
    return TransformedTargetRegressor(regressor=regressor, transformer=StandardScaler())


def _build_ridge(hp: Params, seed: int) -> BaseEstimator:
    return Ridge(**hp, random_state=seed)


def _build_forest_regressor(hp: Params, seed: int) -> BaseEstimator:
    return RandomForestRegressor(**hp, n_jobs=1, random_state=seed)


def _build_svr(hp: Params, seed: int) -> BaseEstimator:
    return _scaled_target(SVR(**hp))


def _build_boosting_regressor(hp: Params, seed: int) -> BaseEstimator:
    return HistGradientBoostingRegressor(**hp, early_stopping=False, random_state=seed)


def _build_knn_regressor(hp: Params, seed: int) -> BaseEstimator:
    return KNeighborsRegressor(**hp)


def _build_mlp_regressor(hp: Params, seed: int) -> BaseEstimator:
    layers = tuple(int(hp[f"units_{i}"]) for i in range(int(hp["n_layers"])))
    mlp = MLPRegressor(hidden_layer_sizes=layers, alpha=hp["alpha"], learning_rate_init=hp["learning_rate_init"],
                       max_iter=500, random_state=seed)  # fmt: skip
    return _scaled_target(mlp)


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "logistic_regression": ModelFamily(_suggest_logistic, _build_logistic, needs_scaling=True),
    "random_forest": ModelFamily(_suggest_forest, _build_forest, needs_scaling=False),
    "svm": ModelFamily(_suggest_svm, _build_svm, needs_scaling=True),
    "gradient_boosting": ModelFamily(_suggest_boosting, _build_boosting, needs_scaling=False, native_categories=True),
    "knn": ModelFamily(_suggest_knn, _build_knn, needs_scaling=True),
    "mlp": ModelFamily(_suggest_mlp, _build_mlp, needs_scaling=True),
}


# The regressors: the same families (a ridge regression for the linear one) and space, without class weights.
REGRESSORS: dict[str, ModelFamily] = {
    "linear": ModelFamily(_suggest_ridge, _build_ridge, needs_scaling=True),
    "random_forest": ModelFamily(partial(_suggest_forest, weighted=False), _build_forest_regressor, False),
    "svm": ModelFamily(partial(_suggest_svm, weighted=False), _build_svr, needs_scaling=True),
    "gradient_boosting": ModelFamily(
        partial(_suggest_boosting, weighted=False), _build_boosting_regressor, False, native_categories=True
    ),
    "knn": ModelFamily(_suggest_knn, _build_knn_regressor, needs_scaling=True),
    "mlp": ModelFamily(_suggest_mlp, _build_mlp_regressor, needs_scaling=True),
}
ALL_MODELS = (*MODEL_FAMILIES, *(m for m in REGRESSORS if m not in MODEL_FAMILIES))  # what --models may name


def families(task: str = CLASSIFICATION) -> dict[str, ModelFamily]:
    """The model families of a task."""
    return REGRESSORS if task == REGRESSION else MODEL_FAMILIES


WEIGHTED = ("logistic_regression", "random_forest", "svm", "gradient_boosting")  # families searching class_weight

# Each family's scikit-learn defaults (within the searched ranges), in the order a search tries them first when it
# knows nothing yet: the configurations a user would try by hand, cheap and good on most tables.
DEFAULTS: dict[str, Params] = {
    "gradient_boosting": {"learning_rate": 0.1, "max_iter": 100, "max_leaf_nodes": 31, "l2_regularization": 1e-6,
                          "class_weight": "none"},
    "random_forest": {"n_estimators": 100, "max_depth": 20, "min_samples_leaf": 1, "max_features": "sqrt",
                      "class_weight": "none"},
    "logistic_regression": {"C": 1.0, "class_weight": "none"},
    "svm": {"C": 1.0, "gamma": 0.1, "kernel": "rbf", "class_weight": "none"},
    "knn": {"n_neighbors": 5, "weights": "uniform", "p": 2},
    "mlp": {"n_layers": 1, "units_0": 100, "alpha": 1e-4, "learning_rate_init": 1e-3},
}  # fmt: skip
# A regressor's defaults: its classifier's less class_weight, in the same order; the ridge's and SVR's own on top.
REGRESSION_DEFAULTS: dict[str, Params] = {
    ("linear" if m == "logistic_regression" else m): {k: v for k, v in hp.items() if k != "class_weight"}
    for m, hp in DEFAULTS.items()
}
REGRESSION_DEFAULTS["linear"] = {"alpha": 1.0}
REGRESSION_DEFAULTS["svm"]["epsilon"] = 0.1


def defaults(task: str = CLASSIFICATION) -> dict[str, Params]:
    """Each family's defaults for a task, in the order a search runs them first."""
    return REGRESSION_DEFAULTS if task == REGRESSION else DEFAULTS


def build_pipeline(
    model: str,
    feature_set: str,
    hyperparams: Params,
    seed: int,
    roles: Roles | int,
    task: str = CLASSIFICATION,
    text: str = TEXT_CHOICES[0],
) -> Pipeline:
    """One Pipeline from raw columns to prediction: preparation where the table needs it (`roles`; an int: that many
    clean numeric columns; `text`: what many-valued text becomes), the feature set, a scaler where the model needs
    one, the model."""
    known = families(task)
    if model not in known:
        raise KeyError(f"unknown model {model!r} for {task}: use one of {sorted(known)}")
    family = known[model]
    estimator = family.build(hyperparams, seed)
    prepared = not (isinstance(roles, int) or roles.plain)
    if not prepared:
        n_features = roles if isinstance(roles, int) else len(roles.columns)
        steps = [("features", make_features(feature_set, n_features, task))]
    else:
        numeric = len(roles.names(NUMERIC))
        features = make_features(feature_set, numeric, task) if numeric else None
        native = family.native_categories and bool(native_category_names(roles))
        prepare = preparation(roles, features, native, seed, task, text)
        if native:  # the model is told which of the prepared columns are categories, by name
            prepare.set_output(transform="pandas")
            estimator.set_params(categorical_features=native_category_names(roles))
        steps = [("prepare", prepare)]
    if family.needs_scaling:  # in place on the preparation's output, its own array: one matrix fewer at the fit
        steps.append(("scaler", ChunkedScaler(copy=not prepared)))
    steps.append((MODEL, estimator))
    return Pipeline(steps)
