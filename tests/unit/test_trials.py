"""The one trial record: the same Trial from a trial's MLflow run and from Tune's result, its outcome and ranking."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, Run, RunData, RunInfo, RunTag

from search.common import contract as c
from search.common.trials import Trial, best_per, number, outcome, rank_trials, records, status_of

CONFIG = {"model": "svm", "feature_set": "basic", "svm": {"C": 3.2, "kernel": "rbf"}, "seed": 0, "cv_folds": 5,
          "trial_index": 7}  # fmt: skip
RESULT = {"trial_id": "t_00007", "val_accuracy": 0.96, "val_f1": 0.95, "train_accuracy": 0.99, "train_f1": 0.98,
          "fit_time_s": 0.012, "predict_ms": 0.4, "model_bytes": 2048, "folds_done": 5, "node": "n1", "hostname": "h1",
          "training_iteration": 5, "confusion_matrix": "[[10, 0], [1, 9]]"}  # fmt: skip


def mlflow_run(status: str = "FINISHED", **metrics: float) -> Run:
    """The run the tracker writes for CONFIG and RESULT (params as strings, metrics as floats, its tags)."""
    params = {"model": "svm", "feature_set": "basic", "C": "3.2", "kernel": "rbf", "seed": "0", "cv_folds": "5"}
    values = {k: float(RESULT[k]) for k in c.TRIAL_METRICS if k in RESULT} | metrics
    tags = {c.TRIAL_ID: "t_00007", c.TRIAL_INDEX: "7", "node": "n1", "hostname": "h1", c.OUTCOME: "completed",
            c.RUN_TYPE: c.TRIAL_RUN, c.SEARCH_ID: "s1", c.CONFUSION_MATRIX: RESULT["confusion_matrix"]}  # fmt: skip
    data = RunData(
        metrics=[Metric(k, v, 0, 0) for k, v in values.items()],
        params=[Param(k, v) for k, v in params.items()],
        tags=[RunTag(k, v) for k, v in tags.items()],
    )
    info = RunInfo("r7", "1", "me", status, 1_000, 2_000, "active", run_name="0007-svm-basic")
    return Run(info, data)


def test_a_run_and_a_tune_result_give_the_same_trial():
    from_run = Trial.from_run(mlflow_run())
    from_tune = Trial.from_result(CONFIG, RESULT, run_id="r7")
    assert from_run == from_tune
    assert (from_run.index, from_run["model"], from_run["feature_set"]) == (7, "svm", "basic")
    assert from_run.trial_id == "t_00007"
    assert from_run.run_name == "0007-svm-basic" and from_run.outcome == c.COMPLETED
    assert from_run.params["C"] == "3.2" and from_run.metrics["model_bytes"] == 2048.0
    assert "training_iteration" not in from_tune.metrics and from_run.run is not None and from_tune.run is None


def test_a_trial_reads_as_its_flat_row():
    trial = Trial.from_run(mlflow_run())
    assert trial["trial_index"] == 7 and trial["val_accuracy"] == 0.96 and trial["C"] == "3.2"
    assert trial.get("error") is None and trial["outcome"] == "completed" and dict(trial) == trial.row()


@pytest.mark.parametrize(
    "status, metrics, failed, expected",
    [
        ("FINISHED", {}, False, c.COMPLETED),
        ("FINISHED", {"folds_done": 2.0}, False, c.STOPPED),
        ("FAILED", {}, True, c.FAILED),
    ],
)
def test_both_sources_agree_on_the_outcome(status, metrics, failed, expected):
    result = {**RESULT, **metrics}
    assert Trial.from_run(mlflow_run(status, **metrics)).outcome == expected
    assert Trial.from_result(CONFIG, result, failed=failed).outcome == expected


@pytest.mark.parametrize(
    "event, metrics, failed, ended, status, expected",
    [
        ("started, no result yet", {}, False, False, "RUNNING", c.UNFINISHED),
        ("every fold ran", {"folds_done": 5}, False, False, "FINISHED", c.COMPLETED),
        ("ASHA cut it after a fold", {"folds_done": 2}, False, False, "FINISHED", c.STOPPED),
        ("its own code raised", {"error": "ValueError: x", "folds_done": 1}, False, False, "FAILED", c.FAILED),
        ("Tune lost its actor too often", {"folds_done": 3}, True, False, "FAILED", c.FAILED),
        ("the search's end cut it before a fold", {}, False, True, "KILLED", c.STOPPED),
        ("the search's end cut it after a fold", {"folds_done": 3}, False, True, "FINISHED", c.STOPPED),
        ("the search's end came after its last fold", {"folds_done": 5}, False, True, "FINISHED", c.COMPLETED),
    ],
)
def test_each_transition_of_a_trial(event, metrics, failed, ended, status, expected):
    assert status_of(metrics, failed, ended) == status, event
    trial = Trial.from_result(CONFIG, {"trial_id": "t", **metrics}, failed=failed, ended=ended)
    assert (trial.status, trial.outcome) == (status, expected), event
    assert isinstance(trial.outcome, c.Outcome) and trial.outcome == expected.value  # a plain word in a table


def test_runs_closed_without_a_score_or_left_running():
    assert Trial.from_run(mlflow_run("KILLED")).outcome == c.STOPPED
    assert Trial.from_run(mlflow_run("RUNNING")).outcome == c.UNFINISHED
    assert outcome({"status": "FINISHED"}) == c.NO_RESULT


def test_trials_rank_with_table_rows_and_best_per_family():
    a = Trial.from_result(CONFIG, RESULT, run_id="a")
    b = Trial.from_result({**CONFIG, "trial_index": 3}, {**RESULT, "fit_time_s": 0.011}, run_id="b")
    knn = {**CONFIG, "model": "knn", "knn": {"n_neighbors": 3}, "trial_index": 1}
    c_ = Trial.from_result(knn, {**RESULT, "val_accuracy": 0.97, "folds_done": 1}, run_id="c")  # stopped early
    assert [t.run_id for t in rank_trials([a, b, c_])] == ["b", "a"]  # fit times 1 ms apart tie: the earlier wins
    table = pd.DataFrame([t.row() for t in (a, b, c_)])
    assert [r["run_id"] for r in rank_trials(table)] == ["b", "a"]
    assert {k: v and v["run_id"] for k, v in best_per(table, "model").items()} == {"svm": "b", "knn": None}
    assert records(table)[2]["error"] is None


def test_one_float_coercion():
    assert number("0.5") == 0.5 and math.isnan(number(None)) and math.isnan(number("x"))
    assert number(float("nan"), -1.0) == -1.0 and number(pd.NA, 2.0) == 2.0


def test_only_completed_trials_are_recorded_after_the_fact():
    """A trial whose last report came just before a Ctrl-C is not done: it reruns on --resume, its run stays open."""
    from ray.tune import Result

    from search.searching.tracking import completed_untracked

    def result(trial_id: str, done: bool, error: Exception | None = None) -> Result:
        metrics = {c.TRIAL_ID: trial_id, c.FOLDS_DONE: 5, "done": done}
        return Result(metrics=metrics, checkpoint=None, error=error, path=f"/tmp/{trial_id}")

    results = [result("a", True), result("b", False), result("c", True), result("d", True, ValueError("x"))]
    results.append(Result(metrics=None, checkpoint=None, error=None, path="/tmp/e"))
    assert [r.metrics[c.TRIAL_ID] for r in completed_untracked(results, ended={"c"})] == ["a"]
