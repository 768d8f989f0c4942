"""Real searches on a real local Ray, tracked by a real `mlflow server`; what landed is read back through MLflow."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster.processes import free_port
from search.common import contract
from search.common.lookup import find_search
from search.common.trials import rank_trials
from search.searching.config import parse_args
from search.searching.driver import run_search
from trainables.data import load_dataset, split_dataset
from trainables.space import config_from_params
from trainables.trainable import cross_validate

pytestmark = pytest.mark.integration
ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def search(uri, tmp_path, *extra):
    argv = ["--tracking-uri", uri, "--storage-path", str(tmp_path / "ray_results"), *extra]
    return run_search(parse_args(argv))


def children(client, outcome):
    runs = client.search_runs(
        [outcome.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'", max_results=1000
    )
    return sorted(runs, key=lambda r: int(r.data.tags["trial_index"]))


POINTS = [
    {"model": "knn", "feature_set": "pca", "n_neighbors": 7, "weights": "distance", "p": 1},
    {"model": "logistic_regression", "feature_set": "squared", "C": 0.5, "class_weight": "balanced"},
]


@pytest.fixture(scope="module")
def iris_search(mlflow_server, ray_session, tmp_path_factory):
    folder = tmp_path_factory.mktemp("iris")
    (folder / "points.json").write_text(json.dumps(POINTS))
    extra = ["--experiment", "it-search", "--num-samples", "8", "--max-concurrent", "2", "--seed", "3"]
    extra += ["--models", "knn,logistic_regression,random_forest,mlp", "--cv-folds", "3"]
    return search(mlflow_server, folder, *extra, "--points-to-evaluate", str(folder / "points.json"))


def study_of(client, outcome):
    """The search's Optuna study, read from its journal as optuna-dashboard reads it."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from search.common.contract import STUDY_JOURNAL

    tune_path = Path(client.get_run(outcome.parent_run_id).data.tags["tune_path"])
    storage = JournalStorage(JournalFileBackend(str(tune_path / STUDY_JOURNAL)))
    return optuna.load_study(storage=storage, study_name=tune_path.name)


def test_the_study_names_its_objective_and_holds_every_trial(mlflow_server, iris_search):
    study = study_of(MlflowClient(mlflow_server), iris_search)
    assert study.metric_names == ["val_accuracy"]  # not "Objective 0" in optuna-dashboard
    assert study.direction.name == "MAXIMIZE" and len(study.trials) == 8


def test_points_to_evaluate_are_the_first_trials(mlflow_server, iris_search):
    runs = children(MlflowClient(mlflow_server), iris_search)
    for run, point in zip(runs[:2], POINTS, strict=True):
        assert {k: run.data.params[k] for k in point} == {k: str(v) for k, v in point.items()}
    assert len({(r.data.params["model"], r.data.params["feature_set"]) for r in runs[2:]}) > 1  # then TPE's own


def test_parent_run_records_the_search(mlflow_server, iris_search):
    client = MlflowClient(mlflow_server)
    parent = client.get_run(iris_search.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.info.run_name == f"search-{iris_search.search_id}"
    tags, params = parent.data.tags, parent.data.params
    assert tags["search_id"] == iris_search.search_id and tags["run_type"] == "search"
    assert tags["dataset"] == "iris" and tags["dataset_digest"] == load_dataset("iris").digest
    assert len(tags["git_commit"]) == 40 and tags["code_digest"].startswith("sha256:")
    assert tags["version.optuna"].startswith("5.")
    assert params["num_samples"] == "8" and params["models"] == "knn,logistic_regression,random_forest,mlp"
    assert params["cv_folds"] == "3" and params["seed"] == "3"
    assert parent.data.metrics["trials_finished"] == 8
    assert [a.path for a in client.list_artifacts(parent.info.run_id)] == ["column_roles.json", "search_config.json"]


def test_every_trial_is_a_child_run_with_the_contracted_names(mlflow_server, iris_search):
    client = MlflowClient(mlflow_server)
    runs = children(client, iris_search)
    parent = client.get_run(iris_search.parent_run_id)
    assert [int(r.data.tags["trial_index"]) for r in runs] == list(range(8))
    by_created = sorted(runs, key=lambda r: r.info.start_time)  # the UI's "Created" order is the proposal order
    assert [int(r.data.tags["trial_index"]) for r in by_created] == list(range(8))
    for run in runs:
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        assert run.info.status == "FINISHED"
        assert tags["search_id"] == iris_search.search_id and tags["run_type"] == "trial"
        assert {*contract.LINEAGE_TAGS, *contract.NODE_TAGS} <= set(tags)
        assert [tags[k] for k in contract.LINEAGE_TAGS] == [parent.data.tags[k] for k in contract.LINEAGE_TAGS]
        assert params["model"] in {"knn", "logistic_regression", "random_forest", "mlp"}
        assert params["seed"] == "3" and params["cv_folds"] == "3"
        assert {"val_accuracy", "val_f1", "train_accuracy", "train_f1", "fit_time_s"} <= set(metrics)
        assert 0.5 < metrics["val_accuracy"] <= 1 and metrics["folds_done"] == 3
        matrix = json.loads(tags[contract.CONFUSION_MATRIX])  # the numbers on every run: 3 folds cover every row
        assert len(matrix) == 3 and sum(map(sum, matrix)) == 120
    # The figure goes to the trial people open: the best of each model family, and only there.
    rows = [{**r.data.metrics, "cv_folds": 3, "trial_index": int(r.data.tags["trial_index"]), "run": r} for r in runs]
    best = {}
    for row in rank_trials(rows):  # the ranking rule, unit-tested on its own
        best.setdefault(row["run"].data.params["model"], row["run"].info.run_id)
    drawn = {r.info.run_id for r in runs if client.list_artifacts(r.info.run_id)}
    assert drawn == set(best.values())
    for run_id in drawn:
        assert [a.path for a in client.list_artifacts(run_id)] == [contract.CONFUSION_MATRIX_PNG]


def test_recorded_metrics_are_reproduced_from_the_recorded_params(mlflow_server, iris_search):
    client = MlflowClient(mlflow_server)
    split = split_dataset(load_dataset("iris"), 0.2, 3)
    for run in children(client, iris_search)[:3]:
        redone = cross_validate(config_from_params(run.data.params), split.X_dev, split.y_dev)
        assert redone["val_accuracy"] == pytest.approx(run.data.metrics["val_accuracy"], abs=1e-12)
        assert redone["val_f1"] == pytest.approx(run.data.metrics["val_f1"], abs=1e-12)


def test_the_best_trial_named_is_the_best_by_the_stated_rule(mlflow_server, iris_search):
    client = MlflowClient(mlflow_server)
    rows = [
        {**r.data.metrics, "trial_index": int(r.data.tags["trial_index"]), "run_id": r.info.run_id}
        for r in children(client, iris_search)
    ]
    best = rank_trials(rows)[0]
    parent = client.get_run(iris_search.parent_run_id)
    assert parent.data.tags["best_trial_run_id"] == best["run_id"] == iris_search.ranked[0]["run_id"]
    assert parent.data.metrics["best_val_accuracy"] == best["val_accuracy"]


def test_one_seed_one_at_a_time_gives_the_same_trials(mlflow_server, ray_session, tmp_path):
    extra = ["--experiment", "it-repeat", "--num-samples", "5", "--max-concurrent", "1", "--seed", "11"]
    extra += ["--dataset", "wine", "--cv-folds", "3", "--models", "knn,svm,logistic_regression", "--warm-start", "off"]
    client = MlflowClient(mlflow_server)

    timings = (contract.FIT_TIME_S, contract.PREDICT_MS, contract.TRIAL_TIME_S)  # clocks, not what the seed decides

    def trials(outcome):
        return [
            (r.data.params, {k: v for k, v in r.data.metrics.items() if k not in timings})
            for r in children(client, outcome)
        ]

    first, second = search(mlflow_server, tmp_path / "a", *extra), search(mlflow_server, tmp_path / "b", *extra)
    assert first.search_id != second.search_id
    assert trials(first) == trials(second) and len(trials(first)) == 5


def test_a_search_shorter_than_its_defaults_leaves_no_trial_waiting(mlflow_server, ray_session, tmp_path):
    """The defaults run first, but no more of them are put in the study than the search has trials."""
    from optuna.trial import TrialState

    extra = ["--experiment", "it-short", "--num-samples", "2", "--cv-folds", "2", "--warm-start", "off"]
    study = study_of(MlflowClient(mlflow_server), search(mlflow_server, tmp_path, *extra))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 2


def test_short_trials_still_run_two_at_a_time(ray_session, tmp_path):
    """Trials far shorter than an actor's start-up keep both slots busy, each on an actor of its own: Tune alone
    kills the second actor while it starts, again and again, in about half of such searches."""
    from collections import Counter

    from search.searching.driver import prepare
    from search.searching.tuning import build_tuner

    argv = ["--models", "knn", "--feature-sets", "basic", "--cv-folds", "2", "--num-samples", "60"]
    config = parse_args([*argv, "--max-concurrent", "2", "--storage-path", str(tmp_path)])
    _, split, _ = prepare(config)
    with contextlib.redirect_stdout(io.StringIO()):
        results = build_tuner(config, split, tmp_path / "short", 2, callbacks=[]).fit()
    pids = Counter(result.metrics["pid"] for result in results)
    assert len(results) == 60 and len(pids) == 2 and min(pids.values()) >= 15, pids


def test_the_driver_lets_its_rows_go_once_the_object_store_holds_them(ray_session, tmp_path):
    """The development part's features go to the object store once, where the trials read them cell for cell; the
    driver's split keeps no row of either part's features, only the labels."""
    import pandas as pd
    import ray

    from search.searching.driver import prepare
    from search.searching.tuning import store_rows, trial_data
    from trainables.columnar import as_frame

    _, split, _ = prepare(parse_args(["--dataset", "wine", "--storage-path", str(tmp_path)]))
    kept = store_rows(split)
    assert len(kept.X_dev) == len(kept.X_test) == 0 and list(kept.X_dev.columns) == list(split.X_dev.columns)
    assert len(kept.y_dev) == len(split.y_dev)
    sent = trial_data(kept)
    assert sent["X"] is kept.stored
    pd.testing.assert_frame_equal(as_frame(ray.get(sent["X"])), split.X_dev, check_exact=True)


def run_cli(cwd, *args, timeout=60):
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "search" / "run.py"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd,
    )
    return result, time.monotonic() - start


def refused(result, seconds, message):
    """One clear line on stderr naming the problem, exit code 2, within seconds, no traceback."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("run: ")]
    return (
        result.returncode == 2
        and len(errors) == 1
        and message in errors[0]
        and "Traceback" not in result.stderr
        and seconds < 30
    )


def csv(tmp_path, text):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


TWO_CLASSES = "a,b,y\n" + "\n".join(f"{i},{i % 5},{'x' if i % 2 else 'z'}" for i in range(30))
BAD_INPUTS = [
    ("unknown model", lambda t: ["--models", "knn,xgboost"], "unknown model ['xgboost']"),
    ("unknown feature set", lambda t: ["--feature-sets", "cubes"], "unknown feature set ['cubes']"),
    ("unknown dataset", lambda t: ["--dataset", "mnist"], "unknown dataset 'mnist'"),
    ("missing CSV", lambda t: ["--dataset", str(t / "absent.csv"), "--target", "y"], "does not exist"),
    ("empty CSV", lambda t: ["--dataset", csv(t, ""), "--target", "y"], "is empty"),
    ("one-class CSV", lambda t: ["--dataset", csv(t, "a,y\n1,x\n2,x\n"), "--target", "y"], "single class"),
    ("header, no rows", lambda t: ["--dataset", csv(t, "a,y\n"), "--target", "y"], "has a header but no rows"),
    ("CSV without its target column", lambda t: ["--dataset", csv(t, TWO_CLASSES), "--target", "label"],
     "target column 'label' is not in"),
    ("--num-samples 0", lambda t: ["--num-samples", "0"], "at least 1 trial"),
    ("a point to evaluate outside the space", lambda t: ["--models", "knn", "--points-to-evaluate",
     csv(t, '[{"model": "knn", "feature_set": "basic", "n_neighbors": 0, "weights": "uniform", "p": 2}]')],
     "configuration 1: knn: The value 0 of the parameter 'knn/n_neighbors' is out of the range"),
    ("unwritable storage path", lambda t: ["--storage-path", "/etc/hostname/results"], "is not writable"),
    ("tracking URI that does not answer", lambda t: ["--tracking-uri", f"http://127.0.0.1:{free_port()}"],
     "does not answer"),
    ("Ray address that does not answer", lambda t: ["--address", f"127.0.0.1:{free_port()}"], "does not answer"),
]  # fmt: skip


# Each bad input goes through the entrypoint's main() in this process; these few also as a real `python
# search/run.py` process, to prove the exit path (a flag refused by argparse, and the two servers that do not answer:
# the Ray address only in a process of its own, as a test process may already hold a Ray).
IN_A_PROCESS = {"unknown model", "tracking URI that does not answer", "Ray address that does not answer"}


@pytest.mark.parametrize(
    "what, args, message", [pytest.param(*row, marks=pytest.mark.bad_input(f"run: {row[0]}")) for row in BAD_INPUTS]
)
def test_bad_input_is_one_clear_line_and_nothing_written(tmp_path, what, args, message, quiet_env, monkeypatch, capsys):
    from search.run import main

    db = tmp_path / "m.db"
    argv = ["--tracking-uri", f"sqlite:///{db}", *args(tmp_path)]
    if what in IN_A_PROCESS:
        result, seconds = run_cli(tmp_path, *argv)
    else:
        monkeypatch.chdir(tmp_path)  # ./ray_results, the default storage path, would be here
        monkeypatch.delenv("TUNE_STORAGE_PATH", raising=False)
        start = time.monotonic()
        code = main(argv)
        out, err = capsys.readouterr()
        result = subprocess.CompletedProcess(argv, code, out, err)
        seconds = time.monotonic() - start
    assert refused(result, seconds, message), result.stderr[-1500:]
    assert not db.exists() and not list(tmp_path.glob("ray_results/search-*"))


def test_asha_stops_trials_after_a_fold_and_they_are_never_the_best(mlflow_server, ray_session, tmp_path):
    extra = ["--experiment", "it-asha", "--num-samples", "10", "--max-concurrent", "2", "--seed", "5"]
    extra += ["--scheduler", "asha", "--models", "knn,logistic_regression,mlp", "--cv-folds", "4"]
    outcome = search(mlflow_server, tmp_path, *extra)
    client = MlflowClient(mlflow_server)
    runs = children(client, outcome)
    stopped = [r for r in runs if r.data.tags["outcome"] == "stopped"]
    completed = [r for r in runs if r.data.tags["outcome"] == "completed"]
    assert len(runs) == 10 and stopped and completed
    assert all(r.data.metrics["folds_done"] < 4 for r in stopped)
    assert all(r.data.metrics["folds_done"] == 4 for r in completed)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.metrics["trials_stopped"] == len(stopped) == outcome.stopped
    best = client.get_run(parent.data.tags["best_trial_run_id"])
    assert best.data.tags["outcome"] == "completed"


@pytest.mark.fault("trials that raise (k-NN asked for more neighbours than a fold has rows)")
def test_failing_trials_are_tracked_as_failed_and_the_rest_complete(mlflow_server, ray_session, tmp_path):
    rows = "\n".join(f"{i},{(i * 7) % 11},{'x' if i % 2 else 'z'}" for i in range(30))
    data = csv(tmp_path, "a,b,kind\n" + rows)
    # One configuration that cannot fit (25 neighbours, 16 rows) and one that can, tried first: no sampler's luck.
    points = [{"model": "knn", "feature_set": "basic", "n_neighbors": k, "weights": "uniform", "p": 2} for k in (25, 3)]
    (tmp_path / "points.json").write_text(json.dumps(points))
    extra = ["--experiment", "it-failing", "--dataset", data, "--target", "kind", "--models", "knn"]
    extra += ["--feature-sets", "basic", "--num-samples", "2", "--cv-folds", "3", "--seed", "0"]
    outcome = search(mlflow_server, tmp_path, *extra, "--points-to-evaluate", str(tmp_path / "points.json"))
    client = MlflowClient(mlflow_server)
    runs = children(client, outcome)
    fold_rows = 24 - 8  # 30 rows, 6 held out, 3 folds of the 24 left: 16 rows to fit on
    failed = [r for r in runs if r.info.status == "FAILED"]
    done = [r for r in runs if r.info.status == "FINISHED"]
    assert len(runs) == 2 and failed and done
    for run in failed:
        assert int(run.data.params["n_neighbors"]) > fold_rows and run.data.tags["outcome"] == "failed"
        assert "n_neighbors" in run.data.tags["error"] and "val_accuracy" not in run.data.metrics
        assert "lost_attempts" not in run.data.tags  # its own error ends it: not retried, as a lost actor is
    for run in done:
        assert int(run.data.params["n_neighbors"]) <= fold_rows and run.data.tags["outcome"] == "completed"
    parent = client.get_run(outcome.parent_run_id)
    assert parent.info.status == "FINISHED" and parent.data.metrics["trials_failed"] == len(failed)


@pytest.mark.fault("the Tuner fails before Tune has set up its callbacks")
def test_a_failure_before_tunes_setup_is_one_line_and_closes_the_parent(
    mlflow_server, ray_session, tmp_path, monkeypatch, capsys
):
    from search.run import main
    from search.searching import tuning

    def broken(*args, **kwargs):
        raise RuntimeError("no Tuner today\nsecond line")

    monkeypatch.setattr(tuning, "build_tuner", broken)
    argv = ["--tracking-uri", mlflow_server, "--experiment", "it-broken", "--num-samples", "2"]
    assert main([*argv, "--storage-path", str(tmp_path / "ray_results")]) == 1
    err = capsys.readouterr().err
    assert "run: failed (RuntimeError: no Tuner today)\n" in err and "Traceback" not in err and "second" not in err
    client = MlflowClient(mlflow_server)
    parent = find_search(client, experiment="it-broken")
    assert parent.info.status == "FAILED"


def test_two_objectives_tag_a_pareto_front(mlflow_server, ray_session, tmp_path):
    from search.common.pareto import dominates, parse_objectives

    extra = ["--experiment", "it-front", "--num-samples", "10", "--seed", "5", "--cv-folds", "3"]
    extra += ["--models", "knn,logistic_regression,random_forest", "--objectives", "val_accuracy,predict_ms"]
    outcome = search(mlflow_server, tmp_path, *extra)
    runs = children(MlflowClient(mlflow_server), outcome)
    done = [r for r in runs if r.data.tags["outcome"] == contract.COMPLETED]
    rows = [dict(r.data.metrics) for r in done]
    on = [row for row, r in zip(rows, done, strict=True) if r.data.tags.get(contract.PARETO_FRONT) == "true"]
    off = [row for row, r in zip(rows, done, strict=True) if r.data.tags.get(contract.PARETO_FRONT) != "true"]
    objectives = parse_objectives("val_accuracy,predict_ms")
    assert on, "the front is never empty"
    study = study_of(MlflowClient(mlflow_server), outcome)
    assert study.metric_names == ["val_accuracy", "predict_ms"]
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    assert not any(dominates(a, b, objectives) for a in rows for b in on)  # nothing beats a front trial
    assert all(any(dominates(a, b, objectives) for a in on) for b in off)  # a front trial beats every other one


def test_ctrl_c_before_tune_saved_anything_leaves_nothing(mlflow_server, ray_session, tmp_path, monkeypatch):
    """Cut between the parent run's start and the Tuner's first state: no run left RUNNING that --resume and the
    report stumble on; the line says to run the search again."""
    from search.common.errors import Interrupted, NothingToDo
    from search.common.lookup import find_search
    from search.searching import tuning

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(tuning, "build_tuner", cut)
    with pytest.raises(Interrupted, match="interrupted before its first trial: nothing ran and nothing is left"):
        search(mlflow_server, tmp_path, "--experiment", "it-cut", "--num-samples", "2")
    with pytest.raises(NothingToDo):
        find_search(MlflowClient(mlflow_server), None, "it-cut")
    assert not list((tmp_path / "ray_results").glob("search-*"))


def test_ctrl_c_as_tune_sets_up_leaves_nothing_not_a_search_that_cannot_resume(mlflow_server, ray_session, tmp_path,
                                                                               monkeypatch):  # fmt: skip
    """Ctrl-C once Tune caught it but before its first trial: Tune saves a state with no trial, which Ray 2.60
    cannot restore (it starts over with one trial, so `--resume` ended "interrupted" again, with nothing run); the
    search leaves nothing instead, and a search so left by an earlier version refuses `--resume` in one line."""
    import signal

    from search.common.errors import Interrupted, NothingToDo, UsageError
    from search.searching.progress import ProgressLine
    from search.searching.tuning import restore_tuner, saved_trials

    def ctrl_c(self, **info):  # Tune's own SIGINT handler is in place when its callbacks are set up
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(ProgressLine, "setup", ctrl_c)
    with pytest.raises(Interrupted, match="interrupted before its first trial: nothing ran and nothing is left"):
        search(mlflow_server, tmp_path, "--experiment", "it-cut-setup", "--num-samples", "2")
    with pytest.raises(NothingToDo):
        find_search(MlflowClient(mlflow_server), None, "it-cut-setup")
    assert not list((tmp_path / "ray_results").glob("search-*"))

    with pytest.raises(Interrupted):  # what an earlier version left: Tune's state with no trial, the parent run
        monkeypatch.setattr("search.searching.driver.nothing_ran", lambda client, home: False)
        search(mlflow_server, tmp_path, "--experiment", "it-cut-setup", "--num-samples", "2")
    (left,) = list((tmp_path / "ray_results").glob("search-*"))
    assert saved_trials(left) == 0
    with pytest.raises(UsageError, match="was cut before its first trial: there is nothing to resume"):
        restore_tuner(parse_args([]), None, left)
