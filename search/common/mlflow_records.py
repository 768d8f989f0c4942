"""Records that MLflow's own UI understands: experiment kind, dataset inputs, source tags, proposal-ordered start times.

MLflow 3.17's UI opens an experiment without `mlflow.experimentKind` on its GenAI overview; with
`custom_model_development` it opens the training runs table. The table's Dataset column shows a run's dataset
inputs and its Source column the `mlflow.source.*` tags. Every function here takes an `MlflowClient` and ids:
no fluent active run, except `evaluate_model`, whose MLflow API needs one and gets it only inside the call.
"""

from __future__ import annotations

import bisect
import contextlib
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_GIT_COMMIT, MLFLOW_SOURCE_NAME, MLFLOW_SOURCE_TYPE

from search.common import contract as c

EXPERIMENT_KIND = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"  # the 3.17 UI's ExperimentKind.CUSTOM_MODEL_DEVELOPMENT


@dataclass(frozen=True)
class DataPart:
    """One part of the search's data as an MLflow dataset: its name, digest and the run context it was used in."""

    dataset: DatasetInput
    name: str
    digest: str
    context: str


def data_part(X: pd.DataFrame, y: pd.Series, name: str, context: str, source: str | None = None) -> DataPart:
    """An MLflow dataset input for features `X` with labels `y`, e.g. `data_part(X_dev, y_dev, "iris-dev", "train")`.

    `source` is where the data was read, as MLflow records a dataset's source (`trainables.data.recorded_source` of
    the search's `--dataset`: a CSV's path); without it (a bundled dataset, `iris`) MLflow records the code that
    built it.

    The digest is MLflow's own (computed once here from the frame); build it once per search and hand the same
    `DataPart` to every run, so a trial only sends it, never recomputes it.
    """
    import mlflow.data

    frame = X.copy()
    frame[y.name or c.TARGET] = y.to_numpy()
    with warnings.catch_warnings():  # hints on the source (set when given) and on integer columns (its schema's)
        warnings.simplefilter("ignore")
        recorded = mlflow.data.from_pandas(frame, source=source or None, targets=y.name or c.TARGET, name=name)
        fields = recorded.to_dict()
    entity = Dataset(**{k: fields.get(k) for k in ("name", "digest", "source_type", "source", "schema", "profile")})
    entity_input = DatasetInput(dataset=entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])
    return DataPart(entity_input, name, entity.digest, context)


def log_data(client: MlflowClient, run_id: str, parts: list[DataPart]) -> None:
    """Log the parts as the run's dataset inputs (one request; logging the same part again adds nothing)."""
    client.log_inputs(run_id, datasets=[part.dataset for part in parts])


def source_tags(entrypoint: str | Path, commit: str, kind: str = "LOCAL") -> dict[str, str]:
    """MLflow's source tags for a run started by `entrypoint` at `commit` (`kind`: LOCAL, JOB, PROJECT ...)."""
    tags = {MLFLOW_SOURCE_NAME: str(entrypoint), MLFLOW_SOURCE_TYPE: kind}
    if commit and commit != "unknown":
        tags[MLFLOW_GIT_COMMIT] = commit
    return tags


ROOM_MS = 32  # how far before a later-proposed trial an earlier one goes: room for five more, halving


class StartTimes:
    """Trial runs' start times in the order the searcher proposed the trials (its `trial_index`).

    Trials start in about the order they are proposed, but not exactly: with two in flight, the second may reach a
    worker first. Each trial gets the real time of its start, moved to sit between the trials proposed before and
    after it that have their time already, so sorting by "Created" gives the proposal order and every time stays
    within tens of milliseconds of the truth.
    """

    def __init__(self) -> None:
        self.assigned: dict[int, int] = {}
        self._order: list[int] = []  # the trial indices with a time, sorted: neighbours by bisection

    def __call__(self, trial_index: int, now_ms: int | None = None) -> int:
        """The start time (ms since the epoch) of trial `trial_index`, starting now."""
        if trial_index in self.assigned:
            return self.assigned[trial_index]
        now = int(time.time() * 1000) if now_ms is None else now_ms
        at = bisect.bisect(self._order, trial_index)
        before = self.assigned[self._order[at - 1]] if at > 0 else None
        after = self.assigned[self._order[at]] if at < len(self._order) else None
        if before is not None:
            now = max(now, before + 1)
        if after is not None and now >= after:  # started after a trial proposed later: just before that one
            if before is None:
                now = after - ROOM_MS
            elif after - before >= 2:
                now = (before + after) // 2  # halfway: room stays for trials proposed in between
        self.assigned[trial_index] = now
        self._order.insert(at, trial_index)
        return now


EVALUATED = {"classifier": "accuracy_score", "regressor": "r2_score"}  # a metric each evaluation logs


def evaluate_model(
    tracking_uri: str,
    run_id: str,
    model_uri: str,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    dataset_name: str = "test",
    model_type: str = "classifier",
) -> dict[str, float]:
    """MLflow's evaluation of `model_uri` (`model_type` classifier or regressor) on the test part, logged to the
    release run `run_id`.

    Logs metrics (a classifier's `accuracy_score`, `f1_score`, `roc_auc` ..., with the confusion matrix, ROC and
    precision-recall curves; a regressor's `root_mean_squared_error`, `r2_score` ...), and links the metrics to the
    logged model behind the registered version (its `models:/m-...` id). Returns the metrics.
    """
    import mlflow
    import mlflow.models

    frame = X_test.copy()
    label = y_test.name or c.TARGET
    frame[label] = y_test.to_numpy()
    mlflow.set_tracking_uri(tracking_uri)
    active = mlflow.active_run()
    if active is not None and active.info.run_id != run_id:
        raise ValueError(f"another MLflow run ({active.info.run_id}) is active: end it before evaluating {run_id}")
    quiet = ("mlflow.models.evaluation", "mlflow.models.evaluation.default_evaluator", "mlflow.pyfunc",
             "mlflow.tracking.fluent")  # fmt: skip
    levels = {name: logging.getLogger(name).level for name in quiet}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.ERROR)
    config = {"log_model_explainability": False, "log_explainer": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = mlflow.data.from_pandas(frame, targets=label, name=dataset_name)
            with mlflow.start_run(run_id=run_id) if active is None else contextlib.nullcontext():
                result = mlflow.models.evaluate(model_uri, data, model_type=model_type, evaluator_config=config)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return {k: float(v) for k, v in result.metrics.items()}


def link_evaluation(client: MlflowClient, name: str, version: str, run_id: str) -> None:
    """Name the run holding the evaluation on the registered version (tag `evaluation_run_id`)."""
    client.set_model_version_tag(name, version, c.EVALUATION_RUN_ID, run_id)
