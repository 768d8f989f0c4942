"""The driver's study journal: Optuna reads back what it wrote, across a pickle round trip and a new reader."""

from __future__ import annotations

import pickle

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from search.searching.journal import DriverJournal


def test_a_study_written_through_the_driver_journal_reads_back_in_optuna(tmp_path):
    path = str(tmp_path / "journal.log")
    storage = JournalStorage(DriverJournal(path))
    study = optuna.create_study(storage=storage, study_name="s", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=5)
    again = pickle.loads(pickle.dumps(storage))  # Tune pickles the searcher with its storage
    study2 = optuna.load_study(storage=again, study_name="s", sampler=optuna.samplers.RandomSampler(seed=1))
    study2.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    # Optuna's own backend, as optuna-dashboard and --resume open it, sees all eight trials in order.
    reader = optuna.load_study(storage=JournalStorage(JournalFileBackend(path)), study_name="s")
    values = [t.value for t in reader.trials]
    assert len(values) == 8 and values[:5] == [t.value for t in study.trials[:5]]
    assert [t.params["x"] for t in reader.trials] == values
