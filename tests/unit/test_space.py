"""The conditional search space and the trial config's round trip through MLflow params."""

import optuna
import pandas as pd
import pytest

from trainables.columns import infer_roles
from trainables.models import MODEL_FAMILIES
from trainables.prepare import TEXT_CHOICES, preparation
from trainables.space import SearchSpace, config_from_params, flat_params


def sample_configs(space: SearchSpace, n: int, seed: int = 0) -> list[dict]:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    configs = []
    for _ in range(n):
        trial = study.ask()
        constants = space(trial)
        flat = {**trial.params, **constants}
        config: dict = {k: v for k, v in flat.items() if "/" not in k}
        for key, value in flat.items():
            if "/" in key:
                family, name = key.split("/", 1)
                config.setdefault(family, {})[name] = value
        configs.append(config)
        study.tell(trial, 0.5)
    return configs


def test_each_family_gets_only_its_own_hyperparameters():
    space = SearchSpace(list(MODEL_FAMILIES), ["basic", "pca"], seed=3, cv_folds=4)
    configs = sample_configs(space, 60)
    assert {c["model"] for c in configs} == set(MODEL_FAMILIES)
    for config in configs:
        assert set(config) - {"model", "feature_set", "seed", "cv_folds", "trial_index"} == {config["model"]}
        assert config["seed"] == 3 and config["cv_folds"] == 4


def test_mlp_layers_follow_the_number_of_layers():
    configs = sample_configs(SearchSpace(["mlp"], ["basic"], seed=0, cv_folds=5), 30)
    for config in configs:
        hp = config["mlp"]
        assert {k for k in hp if k.startswith("units_")} == {f"units_{i}" for i in range(hp["n_layers"])}


def test_narrowed_space_only_proposes_the_chosen_models_and_feature_sets():
    configs = sample_configs(SearchSpace(["knn", "svm"], ["subset"], seed=0, cv_folds=5), 20)
    assert {c["model"] for c in configs} <= {"knn", "svm"}
    assert {c["feature_set"] for c in configs} == {"subset"}


def test_trial_index_is_the_proposal_order():
    configs = sample_configs(SearchSpace(["knn"], ["basic"], seed=0, cv_folds=5), 5)
    assert [c["trial_index"] for c in configs] == [0, 1, 2, 3, 4]


def test_unknown_choices_are_refused():
    with pytest.raises(KeyError):
        SearchSpace(["knn", "xgboost"], ["basic"], seed=0, cv_folds=5)
    with pytest.raises(KeyError):
        SearchSpace(["knn"], ["cubes"], seed=0, cv_folds=5)


def test_params_round_trip_through_mlflow_strings():
    for config in sample_configs(SearchSpace(list(MODEL_FAMILIES), ["basic"], seed=7, cv_folds=5), 30):
        stored = {k: str(v) for k, v in flat_params(config).items()}
        rebuilt = config_from_params(stored)
        expected = {k: v for k, v in config.items() if k != "trial_index"}
        assert rebuilt == expected


def test_a_point_in_mlflow_params_form_becomes_the_searchers_names():
    space = SearchSpace(["svm", "knn"], ["basic", "pca"], seed=0, cv_folds=3)
    flat = {"model": "svm", "feature_set": "pca", "C": "2.5", "kernel": "rbf", "gamma": 0.1, "seed": "0",
            "class_weight": "none"}  # fmt: skip
    assert space.point(flat) == {"model": "svm", "feature_set": "pca", "svm/C": 2.5, "svm/kernel": "rbf",
                                 "svm/gamma": 0.1, "svm/class_weight": "none"}  # fmt: skip
    sampled = sample_configs(space, 20, seed=4)
    for config in sampled:  # every sampled trial, written as MLflow params, is a valid point
        assert space.point(flat_params(config))["model"] == config["model"]


@pytest.mark.parametrize(
    "flat, message",
    [
        ({"model": "mlp", "feature_set": "basic"}, "not one of the searched models"),
        ({"model": "knn", "feature_set": "squared", "n_neighbors": 3}, "feature set 'squared'"),
        ({"model": "svm", "feature_set": "basic", "C": 1.0, "kernel": "rbf"}, "svm needs a value for gamma"),
        ({"model": "svm", "feature_set": "basic", "C": 1e9, "kernel": "rbf", "gamma": 0.1}, "out of the range"),
        ({"model": "svm", "feature_set": "basic", "C": 1.0, "kernel": "cubic", "gamma": 0.1}, "'cubic' not in"),
        (
            {
                "model": "svm",
                "feature_set": "basic",
                "C": 1.0,
                "kernel": "rbf",
                "gamma": 0.1,
                "class_weight": "none",
                "depth": 3,
            },
            "no hyper",
        ),  # fmt: skip
    ],
)
def test_a_point_that_does_not_fit_the_space_is_refused_by_name(flat, message):
    space = SearchSpace(["svm", "knn"], ["basic", "pca"], seed=0, cv_folds=3)
    with pytest.raises(ValueError, match=message):
        space.point(flat)


def test_a_point_written_before_class_weights_were_searched_takes_sklearns_default():
    space = SearchSpace(["random_forest"], ["basic"], seed=0, cv_folds=3)
    flat = {"model": "random_forest", "feature_set": "basic", "n_estimators": 30, "max_depth": 4,
            "min_samples_leaf": 2, "max_features": "sqrt"}  # fmt: skip
    assert space.point(flat)["random_forest/class_weight"] == "none"


def test_the_defaults_first_are_each_searched_family_at_its_sklearn_defaults():
    space = SearchSpace(["knn", "gradient_boosting", "svm"], ["pca", "basic"], seed=0, cv_folds=3)
    first = space.defaults()
    assert [p["model"] for p in first] == ["gradient_boosting", "svm", "knn"]  # the strongest on tables first
    assert {p["feature_set"] for p in first} == {"basic"}
    from sklearn.ensemble import HistGradientBoostingClassifier

    sklearn = HistGradientBoostingClassifier().get_params()
    boosting = {k.split("/")[1]: v for k, v in first[0].items() if "/" in k}
    assert all(boosting[k] == sklearn[k] for k in ("learning_rate", "max_iter", "max_leaf_nodes"))
    assert SearchSpace(["knn"], ["pca"], seed=0, cv_folds=3).defaults()[0]["feature_set"] == "pca"


def test_a_table_with_many_valued_text_searches_what_it_becomes():
    space = SearchSpace(["knn", "random_forest"], ["basic"], seed=0, cv_folds=5, text=True)
    configs = sample_configs(space, 30)
    assert {c["text_features"] for c in configs} == set(TEXT_CHOICES)
    for config in configs:  # the choice is recorded and read back as MLflow params
        assert config_from_params({k: str(v) for k, v in flat_params(config).items()})["text_features"] in TEXT_CHOICES
    assert {p["text_features"] for p in space.defaults()} == {"components"}  # the defaults as before the choice
    older = {"model": "knn", "feature_set": "basic", "n_neighbors": 5, "weights": "uniform", "p": 2}
    assert space.point(older)["text_features"] == "components"  # a trial from before the choice had components
    with pytest.raises(ValueError, match="text_features 'words'"):
        space.point({**older, "text_features": "words"})
    plain = SearchSpace(["knn"], ["basic"], seed=0, cv_folds=5)  # no such text: no such choice
    assert "text_features" not in plain.point(older) and all("text_features" not in c for c in sample_configs(plain, 3))


def test_encoded_text_leaves_out_its_components():
    roles = infer_roles(pd.DataFrame({"car": [f"car {i % 97}" for i in range(600)], "x": [i / 7 for i in range(600)]}))
    assert roles.text
    parts = {kind: [name for name, *_ in preparation(roles, None, False, 0, text=kind).transformers]
             for kind in TEXT_CHOICES}  # fmt: skip
    assert "high_cardinality" in parts["encoded"] and not any(p.startswith("text_") for p in parts["encoded"])
    assert any(p.startswith("text_") for p in parts["components"])
