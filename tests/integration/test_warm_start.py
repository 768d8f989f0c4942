"""Searches that learn from searches, and searches that know when they are done: real searches on a real local Ray,
tracked by a real `mlflow server`, read back through MLflow and the study's journal."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.common.errors import UsageError
from search.common.lookup import search_trials
from search.common.runs_table import load_search
from search.common.trials import rank_trials
from search.reporting.importance import Importance
from search.reporting.report_md import render
from search.searching.config import parse_args
from search.searching.driver import run_search
from trainables.data import load_dataset
from trainables.space import SearchSpace

pytestmark = pytest.mark.integration
SMALL = ["--models", "knn,logistic_regression", "--feature-sets", "basic", "--cv-folds", "2", "--max-concurrent", "2"]


def search(uri, folder, *extra):
    argv = ["--tracking-uri", uri, "--storage-path", str(folder / "ray_results"), *SMALL, *extra]
    return run_search(parse_args(argv))


def study_of(client, outcome):
    """The search's Optuna study, read from its journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from search.common.contract import STUDY_JOURNAL

    tune_path = Path(client.get_run(outcome.parent_run_id).data.tags["tune_path"])
    storage = JournalStorage(JournalFileBackend(str(tune_path / STUDY_JOURNAL)))
    return optuna.load_study(storage=storage, study_name=tune_path.name)


def trials_of(client, outcome):
    return sorted(search_trials(client, outcome.experiment_id, outcome.search_id), key=lambda t: t.index)


@pytest.fixture(scope="module")
def two_in_a_row(mlflow_server, ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("warm")
    extra = ["--experiment", "it-warm", "--num-samples", "6", "--seed", "4"]
    return search(mlflow_server, folder, *extra), search(mlflow_server, folder, *extra)


def test_the_second_search_starts_with_the_first_ones_trials(mlflow_server, two_in_a_row):
    client = MlflowClient(mlflow_server)
    first, second = two_in_a_row
    earlier = [t for t in trials_of(client, first) if t.outcome == c.COMPLETED]
    tags = client.get_run(second.parent_run_id).data.tags
    assert tags[c.WARM_START_FROM] == first.search_id and tags[c.WARM_START_TRIALS] == str(len(earlier))
    assert tags[c.SEARCH_FINGERPRINT] == client.get_run(first.parent_run_id).data.tags[c.SEARCH_FINGERPRINT]
    assert c.WARM_START_FROM not in client.get_run(first.parent_run_id).data.tags  # the first started cold
    study = study_of(client, second)
    known, own = study.trials[: len(earlier)], study.trials[len(earlier) :]
    assert all(t.user_attrs.get(c.WARM_START_FROM) == first.search_id for t in known)  # before any proposal
    space = SearchSpace(["knn", "logistic_regression"], ["basic"], 4, 2)
    assert [t.params for t in known] == [space.point(t.params) for t in earlier]
    assert [t.value for t in known] == [t.metrics[c.VAL_ACCURACY] for t in earlier]
    assert len(own) == 6 and not any(c.WARM_START_FROM in t.user_attrs for t in own)
    runs = trials_of(client, second)  # not copied as runs; its own trials numbered from 0
    assert [t.index for t in runs] == list(range(6)) and all(t.outcome == c.COMPLETED for t in runs)
    best = rank_trials(earlier)[0]  # run first, on the same data, split and folds: the same score again
    assert tags[c.WARM_START_BEST] == f"{first.search_id}/{best.index}"
    assert runs[0].params == best.params and runs[0].metrics[c.VAL_ACCURACY] == best.metrics[c.VAL_ACCURACY]
    search_runs = load_search(client, "it-warm", second.search_id)  # and the report says both
    report = render(search_runs, Importance({}, 0, "none"), None, "model", mlflow_server)
    assert f"| warm start | {len(earlier)} trials of {first.search_id} |" in report
    assert f"| run first | their best, trial {first.search_id}/{best.index} |" in report
    assert any(first.search_id in note for note in second.notes)


def test_warm_start_off_is_cold(mlflow_server, two_in_a_row, tmp_path):
    client = MlflowClient(mlflow_server)
    cold = search(mlflow_server, tmp_path, "--experiment", "it-warm", "--num-samples", "3", "--seed", "4",
                  "--warm-start", "off")  # fmt: skip
    tags = client.get_run(cold.parent_run_id).data.tags
    assert c.WARM_START_FROM not in tags and c.ENQUEUED_FROM not in tags
    assert tags[c.SEARCH_FINGERPRINT] == client.get_run(two_in_a_row[0].parent_run_id).data.tags[c.SEARCH_FINGERPRINT]
    assert len(study_of(client, cold).trials) == 3


def test_a_grown_csv_runs_the_related_searchs_best_first(mlflow_server, ray_session, tmp_path):
    client = MlflowClient(mlflow_server)
    iris = load_dataset("iris")
    frame = iris.X.assign(species=iris.y)
    path = tmp_path / "flowers.csv"
    frame.iloc[::2].to_csv(path, index=False)  # 75 rows, then all 150 in the same file
    extra = ["--experiment", "it-related", "--dataset", str(path), "--target", "species", "--seed", "2"]
    before = search(mlflow_server, tmp_path / "a", *extra, "--num-samples", "6")
    frame.to_csv(path, index=False)
    after = search(mlflow_server, tmp_path / "b", *extra, "--num-samples", "6")
    tags = client.get_run(after.parent_run_id).data.tags
    assert c.WARM_START_FROM not in tags and tags[c.ENQUEUED_FROM] == before.search_id
    assert tags[c.SCHEMA_DIGEST] == client.get_run(before.parent_run_id).data.tags[c.SCHEMA_DIGEST]
    best = [t.params for t in rank_trials(trials_of(client, before))]
    unique = [p for i, p in enumerate(best) if p not in best[:i]][: int(tags[c.ENQUEUED_TRIALS])]
    ran = [t.params for t in trials_of(client, after)][: len(unique)]
    assert ran == unique and len(unique) >= 3
    assert any(before.search_id in note for note in after.notes)


@pytest.mark.bad_input("--resume of a search its --plateau ended")
def test_plateau_ends_a_search_as_completed(mlflow_server, ray_session, tmp_path):
    client = MlflowClient(mlflow_server)
    # A gain of 0.5 never happens: the search ends 3 completed trials after its first.
    extra = ["--experiment", "it-plateau", "--num-samples", "30", "--plateau", "3", "--min-delta", "0.5"]
    outcome = search(mlflow_server, tmp_path, *extra)
    parent = client.get_run(outcome.parent_run_id)
    runs = trials_of(client, outcome)
    done = [t for t in runs if t.outcome == c.COMPLETED]
    assert parent.info.status == "FINISHED" and parent.data.tags[c.STOP_REASON] == c.PLATEAU
    assert outcome.stop_reason == c.PLATEAU and any("--plateau 3" in note for note in outcome.notes)
    assert 4 <= len(done) < len(runs) + 1 < 30 and {t.outcome for t in runs} <= {c.COMPLETED, c.STOPPED}
    assert parent.data.metrics[c.TRIALS_FINISHED] == len(done)
    with pytest.raises(UsageError, match="ended on its --plateau"):
        search(mlflow_server, tmp_path, "--resume", outcome.search_id)


@pytest.mark.bad_input("--resume of a search its --time-budget ended")
def test_a_time_budget_ends_a_search_as_completed(mlflow_server, ray_session, tmp_path):
    client = MlflowClient(mlflow_server)
    extra = ["--experiment", "it-budget", "--dataset", "digits", "--cv-folds", "3"]  # every family
    started = time.monotonic()
    outcome = search(mlflow_server, tmp_path, *extra, "--time-budget", "20s")  # alone: as many trials as fit
    took = time.monotonic() - started
    parent = client.get_run(outcome.parent_run_id)
    runs = trials_of(client, outcome)
    assert parent.info.status == "FINISHED" and parent.data.tags[c.STOP_REASON] == c.TIME_BUDGET
    assert parent.data.params[c.TIME_BUDGET] == "20.0" and outcome.stop_reason == c.TIME_BUDGET
    assert any("time budget of 20s (--time-budget) was spent" in note for note in outcome.notes)
    assert 1 <= len(outcome.ranked) < len(runs) + 1 < 500 and {t.outcome for t in runs} <= {c.COMPLETED, c.STOPPED}
    assert took < 20 + 60  # stopped at the budget, not after 500 trials (the slack is the machine's, not a timing)
    assert all(c.TRIAL_TIME_S in t.metrics for t in runs if t.outcome == c.COMPLETED)
    report = render(load_search(client, "it-budget", outcome.search_id), Importance({}, 0, "none"), None, "model",
                    mlflow_server)  # fmt: skip
    assert "| num_samples | as many as the time budget allows |" in report and "requested)" not in report
    with pytest.raises(UsageError, match="ended on its --time-budget"):
        search(mlflow_server, tmp_path, "--resume", outcome.search_id)
    from release_helpers import run_cli

    code, said, err = run_cli("--tracking-uri", mlflow_server, "--search-id", outcome.search_id, "--no-tag",
                              "--out", str(tmp_path / "releases"))  # fmt: skip
    assert code == 0 and "registered it-budget_best_model v1" in said, err
