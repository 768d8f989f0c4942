"""A trial whose own code raises ends with a failed result (trainables/trainable.py), not an exception: Tune's
`max_failures` then counts only attempts lost with their actor; the searcher and the records see a failed trial."""

from __future__ import annotations

import optuna
import pytest
from ray.tune.search.optuna import OptunaSearch

from search.common import contract as c
from search.common.trials import Trial
from search.searching.elastic import SearchLimiter
from trainables.trainable import failed_result


def test_a_failed_result_carries_the_errors_first_line_and_no_score():
    result = failed_result(ValueError("Expected n_neighbors <= n_samples_fit\n  more detail"))
    assert result[c.ERROR] == "ValueError: Expected n_neighbors <= n_samples_fit" and c.FOLDS_DONE not in result
    assert all(result[k] != result[k] for k in (*c.SCORES, *c.COSTS)), "NaN: Tune wants the search's metric"
    assert len(failed_result(RuntimeError("x" * 2000))[c.ERROR]) == 500


def test_a_failed_result_is_a_failed_trial():
    trial = Trial.from_result({c.MODEL: "knn", c.FEATURE_SET: "basic"}, failed_result(ValueError("no")))
    assert trial.outcome == c.FAILED and trial.metrics == {}
    assert Trial.from_result({c.MODEL: "knn", c.FEATURE_SET: "basic"}, {c.FOLDS_DONE: 3}).outcome == c.COMPLETED


def space(trial) -> None:
    trial.suggest_float("x", 0, 1)


@pytest.mark.parametrize("metric", ["val_accuracy", ["val_accuracy", "predict_ms"]], ids=["one", "several"])
def test_the_study_records_a_failed_result_as_failed_and_a_score_as_complete(metric):
    """Through OptunaSearch as Tune drives it: a result without the metric would raise in its `on_trial_result`
    (one objective) or leave the study's trial RUNNING (several); the limiter hands it over as a failed trial."""
    mode = ["max", "min"] if isinstance(metric, list) else "max"
    storage = optuna.storages.InMemoryStorage()
    searcher = OptunaSearch(space=space, metric=metric, mode=mode, seed=0, storage=storage, study_name="s")
    limiter = SearchLimiter(searcher, max_concurrent=2, follow=False)
    limiter.set_search_properties(None, None, {})
    assert limiter.suggest("failed") and limiter.suggest("scored")
    failed = {**failed_result(ValueError("no")), "training_iteration": 1}
    limiter.on_trial_result("failed", failed)
    limiter.on_trial_complete("failed", failed)
    scored = {"val_accuracy": 0.9, "predict_ms": 1.0, "training_iteration": 1}
    limiter.on_trial_result("scored", scored)
    limiter.on_trial_complete("scored", scored)
    states = [t.state.name for t in optuna.load_study(study_name="s", storage=storage).trials]
    assert states == ["FAIL", "COMPLETE"]
