"""A release under a serving budget: what fits, what the budget ruled out, refusals in one line."""

from __future__ import annotations

import pandas as pd
import pytest

from search.common.errors import NothingToDo, UsageError
from search.releasing.budget import Budget, choose_within


def trial(i: int, acc: float, ms: float | None, mb: float | None, outcome: str = "completed", **extra) -> dict:
    row = {"run_name": f"{i:04d}-m-basic", "trial_index": i, "model": "svm", "outcome": outcome, "val_accuracy": acc,
           "val_f1": acc, "fit_time_s": 0.01, "folds_done": 5.0, "cv_folds": "5", "predict_ms": ms,
           "model_bytes": None if mb is None else mb * 1_000_000}  # fmt: skip
    return row | extra


TABLE = [
    trial(0, 0.98, 9.0, 2.0),  # best score, slow and big
    trial(1, 0.96, 1.0, 0.5),
    trial(2, 0.96, 0.8, 3.0),
    trial(3, 0.90, 0.2, 0.1),
    trial(4, 0.99, 0.1, 0.01, outcome="stopped", folds_done=2.0),  # never eligible
    trial(5, 0.97, None, 0.2),  # no predict_ms recorded
]


def test_budget_that_rules_out_the_best_picks_the_best_within_it():
    choice = choose_within(TABLE, Budget(max_predict_ms=2.0))
    assert choice.best["trial_index"] == 1  # ties trial 2 on every score and fit time: the earlier trial
    assert [r["trial_index"] for r, _ in choice.ruled_out] == [0, 5]
    line = choice.ruled_out_line()
    assert "\n" not in line and "0000-m-basic" in line and "9 ms > 2 ms" in line and "no predict_ms recorded" in line


def test_model_size_budget_and_both_limits():
    assert choose_within(TABLE, Budget(max_model_mb=1.0)).best["trial_index"] == 5
    both = choose_within(TABLE, Budget(max_predict_ms=2.0, max_model_mb=1.0))
    assert both.best["trial_index"] == 1
    assert {r["trial_index"] for r, _ in both.ruled_out} == {0, 2, 5}


def test_ranking_rule_is_the_release_rule():
    rows = [trial(7, 0.95, 1.0, 1.0, val_f1=0.90), trial(8, 0.95, 1.0, 1.0, val_f1=0.94)]
    assert choose_within(rows, Budget(max_predict_ms=5)).best["trial_index"] == 8
    assert choose_within(pd.DataFrame(rows), Budget(max_predict_ms=5), metric="val_f1").best["trial_index"] == 8


def test_budget_that_rules_out_all_refuses_in_one_line():
    with pytest.raises(NothingToDo) as err:
        choose_within(pd.DataFrame(TABLE), Budget(max_predict_ms=0.05, max_model_mb=0.05))
    message = str(err.value)
    assert err.value.exit_code == 1
    assert "\n" not in message and "no trial fits the budget" in message
    assert "0003-m-basic" in message  # the cheapest completed trial, not the stopped one
    assert "--max-predict-ms" in message


@pytest.mark.parametrize("bad", [0, -1.5, float("nan")])
def test_non_positive_limits_are_refused(bad):
    with pytest.raises(UsageError, match="give a positive number"):
        Budget(max_predict_ms=bad)


def test_no_budget_rules_out_nothing():
    choice = choose_within(TABLE, Budget())
    assert choice.best["trial_index"] == 0 and not choice.ruled_out
    assert "ruled out none" in choice.ruled_out_line()
