"""The plateau rule, the fingerprint and the replay of earlier trials through the space, without servers."""

from __future__ import annotations

import optuna
import pytest

from search.common import contract as c
from search.common.errors import UsageError
from search.common.trials import Trial
from search.searching.config import SearchConfig, parse_args
from search.searching.plateau import Plateau
from search.searching.warm import fingerprint, schema_digest
from trainables.data import load_dataset
from trainables.space import SearchSpace


def feed(stopper, scores, folds=2):
    for number, score in enumerate(scores):
        stopper(f"t{number}", {stopper.metric: score, c.FOLDS_DONE: folds})
    return stopper.stop_all()


def test_plateau_counts_completed_trials_without_a_gain_above_min_delta():
    assert not feed(Plateau(c.VAL_ACCURACY, 3, 0.001, 2), [0.9, 0.9005, 0.9])
    assert feed(Plateau(c.VAL_ACCURACY, 3, 0.001, 2), [0.9, 0.9005, 0.9, 0.9])
    assert not feed(Plateau(c.VAL_ACCURACY, 3, 0.001, 2), [0.9, 0.9, 0.9, 0.95, 0.95, 0.95])  # a gain resets it
    assert not feed(Plateau(c.VAL_ACCURACY, 1, 0.001, 2), [0.9, 0.5], folds=1)  # a fold's result is not a trial
    stopper = Plateau(c.VAL_ACCURACY, 2, 0.0, 2)
    for _ in range(3):  # Tune repeats a trial's last result: counted once
        stopper("same", {c.VAL_ACCURACY: 0.9, c.FOLDS_DONE: 2})
    assert not stopper.stop_all() and stopper.completed == 1
    assert feed(Plateau(c.PREDICT_MS, 2, 0.1, 2, mode="min"), [5.0, 4.95, 4.99])  # lower is better


def test_a_resumed_search_goes_on_from_the_count_its_completed_trials_give():
    def trial(index: int, score: float, status: str = "FINISHED") -> Trial:
        metrics = {c.VAL_ACCURACY: score, c.FOLDS_DONE: 2.0}
        return Trial(index, {c.CV_FOLDS: "2"}, metrics, status, run_id=f"r{index}", tags={c.TRIAL_ID: f"t{index}"})

    stopper = Plateau(c.VAL_ACCURACY, 3, 0.001, 2)
    stopper.replay([trial(2, 0.9), trial(0, 0.95), trial(1, 0.9), trial(3, 0.99, status="KILLED")])
    assert (stopper.completed, stopper.since_best, stopper.fired) == (3, 2, False)  # 0.95 first, then two ties
    stopper("t4", {c.VAL_ACCURACY: 0.9, c.FOLDS_DONE: 2})
    assert stopper.stop_all()


def test_the_fingerprint_names_data_split_and_folds_not_the_families():
    iris, wine = load_dataset("iris"), load_dataset("wine")
    base = fingerprint(iris, SearchConfig())
    assert base == fingerprint(iris, SearchConfig(models=["knn"], num_samples=5))
    others = [SearchConfig(seed=1), SearchConfig(cv_folds=3), SearchConfig(test_size=0.3)]
    assert base not in {fingerprint(iris, config) for config in others} | {fingerprint(wine, SearchConfig())}
    assert schema_digest(iris) != schema_digest(wine)


def test_an_earlier_trial_replays_with_this_searchs_distributions_and_numbers_from_zero():
    space = SearchSpace(["knn", "svm"], ["basic"], 0, 2)
    params = {"model": "knn", "feature_set": "basic", "n_neighbors": "7", "weights": "distance", "p": "1"}
    fixed = space.replay({**params, "seed": "1", "cv_folds": "5"})
    assert fixed.params["knn/n_neighbors"] == 7 and set(fixed.params) == set(fixed.distributions)
    with pytest.raises(ValueError):  # a family this search does not use
        space.replay({"model": "mlp", "feature_set": "basic"})
    study = optuna.create_study(direction="maximize")
    earlier = optuna.trial.create_trial(params=fixed.params, distributions=fixed.distributions, value=0.9)
    study.add_trials([earlier] * 3)
    space.first_number = 3
    assert space(study.ask())[c.TRIAL_INDEX] == 0


@pytest.mark.bad_input("--plateau 0, a negative --min-delta")
def test_plateau_settings_are_checked():
    with pytest.raises(UsageError, match="--plateau is 0"):
        parse_args(["--plateau", "0"])
    with pytest.raises(UsageError, match="--min-delta is -1"):
        parse_args(["--plateau", "5", "--min-delta", "-1"])
    assert parse_args(["--warm-start", "off"]).warm_start == "off"
