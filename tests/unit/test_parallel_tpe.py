"""The in-flight scheduler of benchmarks/parallel_tpe.py: K trials pending at every ask, each told once, in order."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from benchmarks.parallel_tpe import run_in_flight


@pytest.mark.parametrize(("n_trials", "k"), [(10, 1), (10, 4), (3, 4)])
def test_keeps_k_pending_and_tells_each_trial_once_in_ask_order(n_trials: int, k: int) -> None:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    running_at_ask: list[int] = []
    told: list[int] = []
    original_tell = study.tell

    def tell(trial, value):
        told.append(trial.number)
        return original_tell(trial, value)

    study.tell = tell

    def objective(trial: optuna.Trial) -> float:
        running_at_ask.append(len(study.get_trials(states=(TrialState.RUNNING,))))
        return float(trial.number)

    run_in_flight(study, objective, n_trials, k)

    # the trial being asked counts itself: with k in flight, k - 1 others are still running at each ask
    assert running_at_ask == [min(i, k - 1) + 1 for i in range(n_trials)]
    assert told == list(range(n_trials))
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    assert [t.value for t in trials] == [float(t.number) for t in trials]
