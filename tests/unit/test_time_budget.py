"""`--time-budget`: durations as people write them, the budget's clock, and the first of several stoppers to fire."""

from __future__ import annotations

import pickle
import time

import pytest

from search.common import contract as c
from search.common.errors import UsageError
from search.searching.plateau import Plateau
from search.searching.time_budget import Ending, TimeBudget, parse_duration, say_duration


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("10m", 600), ("2h", 7200), ("1.5h", 5400), ("45", 45)])
def test_durations_as_people_write_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0s", "ten minutes", "10 min", "-5m", "5d"])
def test_what_is_not_a_duration_is_refused_in_one_line(text):
    with pytest.raises(UsageError, match="is not a duration: give one such as 90s, 10m or 2h"):
        parse_duration(text)


def test_durations_are_said_as_read():
    assert [say_duration(s) for s in (45, 600, 3900)] == ["45s", "10m 00s", "1h 05m"]


def test_the_budget_fires_once_spent_and_not_before():
    budget = TimeBudget(60, started=time.monotonic())
    assert not budget.stop_all() and not budget.fired
    spent = TimeBudget(60, started=time.monotonic() - 61)
    assert spent.stop_all() and spent.fired and "1m 00s" in spent.reason()


def test_a_restored_budget_has_what_was_left():
    budget = TimeBudget(60, started=time.monotonic() - 45)
    restored = pickle.loads(pickle.dumps(budget))  # as Tune restores it in a resumed driver, whose clock differs
    assert not restored.stop_all() and 14 < restored.left_s() <= 15
    spent = pickle.loads(pickle.dumps(TimeBudget(60, started=time.monotonic() - 61)))
    assert spent.stop_all() and spent.left_s() == 0


def test_the_first_stopper_to_fire_names_the_reason():
    plateau = Plateau(c.VAL_ACCURACY, patience=2, min_delta=0.0, cv_folds=1)
    budget = TimeBudget(3600)
    ending = Ending(plateau, budget, None)
    for trial, score in (("a", 0.9), ("b", 0.8), ("c", 0.7)):
        ending(trial, {c.VAL_ACCURACY: score, c.FOLDS_DONE: 1})
    assert ending.stop_all() and ending.code == c.PLATEAU and "--plateau 2" in ending.reason()
    budget.started -= 3601
    assert ending.stop_all() and ending.code == c.PLATEAU  # the first to fire stays the reason
    alone = Ending(TimeBudget(1, started=time.monotonic() - 2))
    assert alone.stop_all() and alone.code == c.TIME_BUDGET and alone.fired
    assert Ending().code == c.NUM_SAMPLES and not Ending().fired


@pytest.mark.parametrize(
    "reason, failed, stopped, folds, said",
    [
        ("time_budget", 0, 3, 5, "--time-budget 20s ended before any trial ran all its 5 folds (3 cut short)"),
        ("time_budget", 0, 2, 1, "--time-budget 20s ended before any trial ran its fit on every row (2 cut short)"),
        ("time_budget", 2, 1, 5, "2 failed; see the failed trials' `error` tag"),
        ("num_samples", 0, 4, 5, "all 4 were stopped early"),
    ],
)
def test_a_search_with_no_completed_trial_says_why(reason, failed, stopped, folds, said):
    from search.run import nothing_completed
    from search.searching.config import SearchConfig
    from search.searching.driver import SearchOutcome

    outcome = SearchOutcome("s", "e", "1", "p", [], failed, stopped, stop_reason=reason)
    assert said in nothing_completed(outcome, SearchConfig(time_budget="20s", cv_folds=folds))


@pytest.mark.parametrize(
    ("argv", "trials"),
    [([], 30), (["--time-budget", "90s"], "until"), (["--time-budget", "90s", "--num-samples", "7"], 7)],
)
def test_a_time_budget_alone_runs_as_many_trials_as_fit_in_it(argv, trials):
    from search.common.contract import UNTIL_BUDGET
    from search.searching.config import parse_args
    from search.searching.progress import Progress

    config = parse_args(argv)
    assert config.num_samples == (UNTIL_BUDGET if trials == "until" else trials)
    line = Progress(config.num_samples, finished=3, running=2, budget_left=30.0).line(12.0)
    assert line.startswith("trials 3 finished" if trials == "until" else f"trials 3/{trials} finished"), line


def test_the_commands_budget_counts_from_its_start_not_from_the_search(monkeypatch, capsys):
    import search.searching.driver as driver
    from search import run

    seen = {}

    def stop_at_the_search(config, started=None):
        seen["started"] = started
        raise UsageError("stopped where the search would start")

    monkeypatch.setattr(driver, "run_search", stop_at_the_search)
    before = time.monotonic()
    assert run.main(["--time-budget", "30s"]) == 2 and "stopped where" in capsys.readouterr().err
    assert seen["started"] is not None and before <= seen["started"] <= time.monotonic()
