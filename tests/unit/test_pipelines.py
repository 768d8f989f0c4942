"""Feature sets and model families build Pipelines that work on every bundled dataset."""

import warnings

import numpy as np
import pytest
from sklearn.pipeline import Pipeline

from trainables.data import load_dataset
from trainables.features import FEATURE_SETS, make_features
from trainables.models import MODEL_FAMILIES, build_pipeline

TYPICAL = {
    "logistic_regression": {"C": 1.0, "class_weight": "none"},
    "random_forest": {"n_estimators": 20, "max_depth": 5, "min_samples_leaf": 1, "max_features": "sqrt"},
    "svm": {"C": 1.0, "gamma": 0.1, "kernel": "rbf"},
    "gradient_boosting": {"learning_rate": 0.1, "max_iter": 20, "max_leaf_nodes": 8, "l2_regularization": 0.0},
    "knn": {"n_neighbors": 5, "weights": "uniform", "p": 2},
    "mlp": {"n_layers": 2, "units_0": 16, "units_1": 8, "alpha": 1e-4, "learning_rate_init": 1e-2},
}


def test_families_and_feature_sets_are_the_documented_ones():
    assert set(TYPICAL) == set(MODEL_FAMILIES)
    assert {"basic", "subset", "squared"} <= set(FEATURE_SETS) and len(FEATURE_SETS) >= 4


@pytest.mark.parametrize("name", sorted(FEATURE_SETS))
@pytest.mark.parametrize("dataset", ["iris", "wine", "digits"])
def test_feature_sets_transform_every_dataset(name, dataset):
    data = load_dataset(dataset)
    n = data.X.shape[1]
    out = np.asarray(make_features(name, n).fit_transform(data.X, data.y))
    assert out.shape[0] == len(data.X) and np.isfinite(out).all()
    expected = {"basic": n, "subset": (n + 1) // 2, "squared": 2 * n}
    if name in expected:
        assert out.shape[1] == expected[name]
    else:
        assert 1 <= out.shape[1] <= n


def test_squared_appends_the_squares_of_the_originals():
    data = load_dataset("iris")
    out = np.asarray(make_features("squared", 4).fit_transform(data.X))
    np.testing.assert_allclose(out[:, 4:], data.X.to_numpy() ** 2)


def test_subset_on_iris_keeps_the_petal_measurements():
    data = load_dataset("iris")
    selector = make_features("subset", 4).fit(data.X, data.y)
    assert list(selector.get_feature_names_out()) == ["petal length (cm)", "petal width (cm)"]


def test_subset_on_digits_skips_its_constant_pixels_without_a_warning():
    data = load_dataset("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # f_classif warns about (and divides by zero on) a constant column
        out = make_features("subset", 64).fit_transform(data.X.iloc[:100], data.y.iloc[:100])
    assert out.shape == (100, 32)


@pytest.mark.parametrize("model", sorted(MODEL_FAMILIES))
def test_each_family_is_one_pipeline_from_raw_columns(model):
    data = load_dataset("iris")
    pipeline = build_pipeline(model, "squared", TYPICAL[model], seed=0, roles=4)
    assert isinstance(pipeline, Pipeline) and pipeline.steps[0][0] == "features"
    assert ("scaler" in pipeline.named_steps) == MODEL_FAMILIES[model].needs_scaling
    predictions = pipeline.fit(data.X, data.y).predict(data.X)
    assert (predictions == data.y.to_numpy()).mean() > 0.8


def test_mlp_hidden_layers_come_from_its_hyperparameters():
    pipeline = build_pipeline("mlp", "basic", TYPICAL["mlp"], seed=0, roles=4)
    assert pipeline.named_steps["model"].hidden_layer_sizes == (16, 8)


def test_unknown_model_is_refused():
    with pytest.raises(KeyError, match="unknown model"):
        build_pipeline("xgboost", "basic", {}, seed=0, roles=4)


def test_every_class_weight_the_space_offers_fits_labels_that_read_as_numbers():
    """Digits' labels are the text "0".."9"; scikit-learn 1.9's forest refuses class_weight="balanced" for them."""
    import optuna

    from trainables.models import WEIGHTED

    data = load_dataset("digits")
    X, y = data.X.iloc[:300], data.y.iloc[:300]
    for model in WEIGHTED:
        trial = optuna.create_study().ask()
        MODEL_FAMILIES[model].suggest(trial, model)
        for weight in trial.distributions[f"{model}/class_weight"].choices:
            hyper = {k.split("/")[1]: v for k, v in trial.params.items()} | {"class_weight": weight}
            build_pipeline(model, "basic", hyper, seed=0, roles=64).fit(X, y)
