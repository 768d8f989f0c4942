"""The progress line's arithmetic and wording, and how often the callback prints it when output is not a terminal."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from search.common.trials import Trial
from search.searching import progress
from search.searching.progress import Progress, ProgressLine, clock


def trial(index: int, score: float, folds_done: int = 3, model: str = "svm") -> Trial:
    config = {"model": model, "feature_set": "basic", model: {}, "trial_index": index, "cv_folds": 3}
    return Trial.from_result(config, {"val_accuracy": score, "val_f1": score, "folds_done": folds_done})


def test_the_clock_reads_minutes_then_hours():
    assert [clock(s) for s in (0, 9.9, 75, 3600 + 62)] == ["0:00", "0:09", "1:15", "1:01:02"]


def test_before_any_trial_ends_the_line_says_it_is_still_estimating():
    line = Progress(30, running=2).line(elapsed=5)
    assert line == "trials 0/30 finished, 2 running, 0 failed | 0:05 elapsed, estimating what is left"


def test_the_best_completed_trial_is_named_and_what_is_left_follows_the_pace():
    p = Progress(30, running=2, failed=1)
    for index, score in enumerate([0.90, 0.97, 0.93, 0.99]):
        p.add_ended(trial(index, score, folds_done=3 if score < 0.99 else 1), f"{index:04d}-svm-basic")
    assert p.best == (0.97, "0001-svm-basic"), "a trial cut short (1 of 3 folds) is never the best"
    assert (p.finished, p.stopped) == (4, 1)
    # 5 trials done (4 ended, 1 failed) in 50 s: 25 left at 10 s each.
    assert p.line(elapsed=50) == (
        "trials 4/30 finished (1 stopped early), 2 running, 1 failed | best val_accuracy 0.9700 (0001-svm-basic)"
        " | 0:50 elapsed, about 4:10 left"
    )


def test_a_tie_goes_to_the_trial_the_summary_ranks_first():
    p = Progress(10)
    first = trial(0, 0.95)
    later = Trial.from_result(
        {"model": "knn", "feature_set": "pca", "knn": {}, "trial_index": 1, "cv_folds": 3},
        {"val_accuracy": 0.95, "val_f1": 0.96, "folds_done": 3},
    )
    p.add_ended(first, "0000-svm-basic")
    p.add_ended(later, "0001-knn-pca")
    assert p.best == (0.95, "0001-knn-pca")  # the same val_accuracy, a higher val_f1


def test_a_minimised_objective_keeps_its_lowest_score():
    p = Progress(10, metric="val_accuracy", mode="min")
    for index, score in enumerate([0.9, 0.8, 0.85]):
        p.add_ended(trial(index, score), f"t{index}")
    assert p.best == (0.8, "t1")


def test_a_resumed_search_paces_on_the_trials_of_this_run_only():
    p = Progress(20, finished=10, done_before=10)
    assert p.left_s(elapsed=30) is None
    p.finished = 12
    assert p.left_s(elapsed=30) == pytest.approx(15 * 8)


def test_the_last_line_says_nothing_is_left():
    p = Progress(2, finished=2, best=(0.95, "0001-knn-pca"))
    assert (
        p.line(elapsed=61)
        == "trials 2/2 finished, 0 running, 0 failed | best val_accuracy 0.9500 (0001-knn-pca) | 1:01 elapsed"
    )


def test_a_search_ended_early_says_nothing_is_left():
    p = Progress(30, finished=12, best=(0.95, "0003-knn-pca"))
    assert p.line(elapsed=60).endswith("1:00 elapsed, about 1:30 left")
    assert p.line(elapsed=60, ended=True).endswith("| 1:00 elapsed")  # its plateau ended it, or Ctrl-C


def test_a_narrow_terminal_gets_the_short_form_with_the_time_kept():
    p = Progress(300, finished=120, stopped=3, running=2, failed=1, best=(0.9833, "0117-gradient_boosting-squared"))
    assert p.line(elapsed=600, width=79) == "120/300 done (3 stopped), 2 running, 1 failed | 10:00, ~14:47 left"
    assert (
        p.line(elapsed=600, width=80)
        == p.line(elapsed=600, width=84)
        == ("120/300 done (3 stopped), 2 running, 1 failed | 10:00, ~14:47 left | best 0.9833")
    )
    assert p.line(elapsed=600, width=20) == "120/300 done (3 stop"
    assert len(p.line(elapsed=600)) > 79 and p.line(elapsed=600, width=300) == p.line(elapsed=600)


def tune_trial(trial_id: str, status: str, index: int = 0, score: float | None = None) -> SimpleNamespace:
    config = {"model": "knn", "feature_set": "pca", "knn": {}, "trial_index": index, "cv_folds": 3}
    result = {"val_accuracy": score, "folds_done": 3} if score is not None else {}
    return SimpleNamespace(trial_id=trial_id, status=status, config=config, last_result=result)


def test_through_a_pipe_a_plain_line_at_most_every_few_seconds_and_one_at_the_end(capsys, monkeypatch):
    """Fed as Tune feeds a callback (its Trials stand-ins with status, id, config and last result)."""
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    line = ProgressLine(3)
    line.setup()
    trials = [tune_trial("a", "RUNNING", 0), tune_trial("b", "RUNNING", 1), tune_trial("c", "PENDING", 2)]
    for step in range(6):  # 3 s of steps
        now[0] += 0.5
        line.on_step_end(iteration=step, trials=trials)
    trials[0] = tune_trial("a", "TERMINATED", 0, 0.9)
    line.on_trial_complete(iteration=7, trials=trials, trial=trials[0])
    assert capsys.readouterr().out == ""
    now[0] += progress.PIPE_EVERY_S
    line.on_step_end(iteration=31, trials=trials)
    line.on_step_end(iteration=32, trials=trials)
    assert capsys.readouterr().out.splitlines() == [
        "trials 1/3 finished, 1 running, 0 failed | best val_accuracy 0.9000 (0000-knn-pca) | 0:13 elapsed, "
        "about 0:26 left"
    ]
    trials[1:] = [tune_trial("b", "TERMINATED", 1, 0.95), tune_trial("c", "ERROR", 2)]
    line.on_trial_complete(iteration=33, trials=trials, trial=trials[1])
    trials.append(tune_trial("d", "TERMINATED", 3, 0.99))  # cut in flight by Ctrl-C: no trial end, not counted
    line.on_experiment_end(trials=trials)
    out = capsys.readouterr().out
    assert out == "trials 2/3 finished, 0 running, 1 failed | best val_accuracy 0.9500 (0001-knn-pca) | 0:13 elapsed\n"
    assert "\r" not in out


def test_a_resumed_search_counts_its_finished_trials_from_the_first_step(capsys):
    line = ProgressLine(4)
    line.setup()
    trials = [tune_trial("a", "TERMINATED", 0, 0.9), tune_trial("b", "TERMINATED", 1, 0.8), tune_trial("c", "PENDING")]
    line.on_step_end(iteration=0, trials=trials)
    assert (line.progress.finished, line.progress.done_before, line.progress.best) == (2, 2, (0.9, "0000-knn-pca"))


def test_a_time_budget_bounds_what_is_left_and_says_so():
    p = Progress(100, running=2, budget_left=30)
    for index in range(5):
        p.add_ended(trial(index, 0.9), f"{index:04d}-svm-basic")
    # 5 trials in 50 s: 95 left would take 950 s, but the budget has 30 s left.
    assert p.line(elapsed=50).endswith("| 0:50 elapsed, about 0:30 left of the time budget")
    p.budget_left = 10_000  # a budget further off than the trials: the pace decides
    assert p.line(elapsed=50).endswith("| 0:50 elapsed, about 15:50 left")


@pytest.mark.parametrize("fired, counted", [(True, (3, 1)), (False, (1, 0))])
def test_trials_in_flight_at_the_searchs_end_count_as_the_summary_counts_them(capsys, fired, counted):
    """Tune calls no trial end for the trials running when the plateau or the budget ends the search: the last line
    counts them (the one that had completed its folds as finished, the one cut before a fold as stopped); after a
    Ctrl-C (nothing fired) they rerun on --resume, so they are not counted."""
    line = ProgressLine(10, ending=SimpleNamespace(fired=fired, budget_left_s=lambda: None))
    line.setup()
    done = tune_trial("a", "TERMINATED", 0, 0.9)
    line.on_trial_complete(1, [done], done)
    trials = [done, tune_trial("b", "TERMINATED", 1, 0.95), tune_trial("c", "TERMINATED", 2)]
    line.on_experiment_end(trials)
    assert (line.progress.finished, line.progress.stopped) == counted
