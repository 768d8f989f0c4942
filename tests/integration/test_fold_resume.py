"""Lose at most a fold: a trial whose worker process vanishes after keeping two folds resumes from them, on a real
local Ray with a real `mlflow server`; its run stays one run, records the lost attempt, and scores as an
undisturbed trial with the same params and seed."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray import cloudpickle

from search.common import contract as c
from search.searching import tuning
from search.searching.config import parse_args
from search.searching.driver import run_search
from trainables.data import load_dataset, split_dataset
from trainables.space import config_from_params
from trainables.trainable import cross_validate, train_trial

pytestmark = pytest.mark.integration
POINT = {"model": "random_forest", "feature_set": "basic", "n_estimators": 30, "max_depth": 4,
         "min_samples_leaf": 2, "max_features": "sqrt"}  # fmt: skip


def vanishing_trial(config, X, y, report_folds=False, storage=None, marker="", **kept):
    """`train_trial`, whose worker process exits (as a killed node's would) right after it kept its second fold,
    once per search (the marker file says it happened)."""
    from trainables import folds

    keep = folds.FoldKeeper.report

    def keep_then_vanish(self, metrics, progress):
        keep(self, metrics, progress)
        if progress.done == 2 and not Path(marker).exists():
            Path(marker).write_text("gone")
            os._exit(1)

    folds.FoldKeeper.report = keep_then_vanish
    try:
        train_trial(config, X, y, report_folds=report_folds, storage=storage, **kept)
    finally:
        folds.FoldKeeper.report = keep


@pytest.mark.parametrize("kept_in", ["checkpoint", "trial run"])
def test_a_trial_that_loses_its_worker_resumes_from_its_last_kept_fold(mlflow_server, ray_session, tmp_path, kept_in):
    """Kept as Tune checkpoints where the worker sees Tune's folder; in the trial's MLflow run where it does not
    (as on compose: here the trainable is told the folder is not there, and keeps every fold)."""
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import a test module
    marker = tmp_path / "vanished"
    original = tuning.train_trial
    elsewhere = {"storage": None, "keep_after_s": 0} if kept_in == "trial run" else {}
    tuning.train_trial = lambda config, X, y, **kw: vanishing_trial(config, X, y, marker=str(marker), **kw | elsewhere)
    (tmp_path / "points.json").write_text(json.dumps([POINT]))
    argv = ["--tracking-uri", mlflow_server, "--storage-path", str(tmp_path / "ray_results"), "--dataset", "wine"]
    argv += ["--experiment", "it-fold-resume", "--num-samples", "1", "--scheduler", "asha", "--cv-folds", "4"]
    try:
        outcome = run_search(parse_args([*argv, "--points-to-evaluate", str(tmp_path / "points.json")]))
    finally:
        tuning.train_trial = original
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    assert marker.exists(), "the worker never vanished"
    client = MlflowClient(mlflow_server)
    runs = client.search_runs([outcome.experiment_id], f"tags.{c.SEARCH_ID} = '{outcome.search_id}'")
    trials = [r for r in runs if r.data.tags[c.RUN_TYPE] == c.TRIAL_RUN]
    assert len(trials) == 1, "one trial, one run, whatever its attempts"
    run = trials[0]
    assert run.info.status == "FINISHED" and run.data.tags[c.OUTCOME] == c.COMPLETED
    tags = run.data.tags
    assert tags[c.LOST_ATTEMPTS] == "1" and tags[c.FOLDS_RESTORED] == "2" and tags[c.FOLDS_REDONE] == "0"
    assert tags[f"{c.LOST_ATTEMPT}_1"], "the lost attempt's error"
    assert (c.FOLDS_KEPT in tags) == (kept_in == "trial run"), "folds kept on the run only where no folder is shared"
    # An undisturbed trial with the same params and seed, in this process: the same scores, to the last bit.
    split = split_dataset(load_dataset("wine"), 0.2, 42)
    undisturbed = cross_validate(config_from_params(run.data.params), split.X_dev, split.y_dev)
    for key in (c.VAL_ACCURACY, c.VAL_F1, c.TRAIN_ACCURACY, c.TRAIN_F1, c.MODEL_BYTES, c.FOLDS_DONE):
        assert run.data.metrics[key] == undisturbed[key], key
    assert tags[c.CONFUSION_MATRIX] == undisturbed[c.CONFUSION_MATRIX]
