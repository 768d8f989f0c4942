"""Records that MLflow's own UI understands: experiment kind, dataset inputs, source tags, proposal-ordered start times.

Every function takes an `MlflowClient` and ids, except `evaluate_model`, whose MLflow API needs an active run.
"""

from __future__ import annotations

import bisect
import contextlib
import json
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
TRAINING_KIND = "custom_model_development"  # without it MLflow 3.17's UI opens the GenAI overview, not the runs


@dataclass(frozen=True)
class DataPart:
    """One part of the search's data as an MLflow dataset: its name, digest and the run context it was used in."""

    dataset: DatasetInput
    name: str
    digest: str
    context: str


def data_part(X: pd.DataFrame, y: pd.Series, name: str, context: str, source: str | None = None) -> DataPart:
    """An MLflow dataset input for features `X` with labels `y` read from `source` (None: MLflow records the code).
    Build it once per search and hand it to every run. It is the record `mlflow.data.from_pandas` makes of the
    whole frame, made from a few rows (BENCHMARKS.md, "Measured once": MLflow's dataset records)."""
    label = y.name or c.TARGET
    with warnings.catch_warnings():  # hints on the source (set when given) and on integer columns (its schema's)
        warnings.simplefilter("ignore")
        fields = sampled_dataset(X, y, label, name, source).to_dict()
    fields["profile"] = json.dumps({"num_rows": len(X), "num_elements": int(len(X) * (X.shape[1] + 1))})
    entity = Dataset(**{k: fields.get(k) for k in ("name", "digest", "source_type", "source", "schema", "profile")})
    entity_input = DatasetInput(dataset=entity, tags=[InputTag(key=MLFLOW_DATASET_CONTEXT, value=context)])
    return DataPart(entity_input, name, entity.digest, context)


def sampled_dataset(X: pd.DataFrame, y: pd.Series, label: str, name: str, source: str | None = None):
    """`mlflow.data.from_pandas` of the rows `schema_rows` picks, with the whole frame's digest (`pandas_digest`):
    the name, digest, source and schema MLflow records for `X` with the label column `label`."""
    import mlflow.data

    rows = schema_rows(X, y)
    sample = X.take(rows)
    sample[label] = y.to_numpy()[rows]
    return mlflow.data.from_pandas(sample, source=source or None, targets=label, name=name,
                                   digest=pandas_digest(X, y, label))  # fmt: skip


def _only_text(values: pd.Series) -> bool:
    """Whether every value of the column is a `str` (MLflow's test of a text column, without asking each cell of a
    column whose dtype answers)."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype):
        return len(values) == 0
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        return not values.isna().any()  # pandas' text dtype: text, or missing
    return bool(values.astype(object).map(type).eq(str).all())


def pandas_digest(X: pd.DataFrame, y: pd.Series, label: str) -> str:
    """`mlflow.data.digest_utils.compute_pandas_digest` of `X` with the label column `label` added (the frame MLflow's
    dataset record describes), computed from its first `MAX_ROWS` rows and each column's dtype."""
    import numpy as np
    from mlflow.data.digest_utils import MAX_ROWS, get_normalized_md5_digest

    trimmed = X.head(MAX_ROWS).copy()
    trimmed[label] = y.head(MAX_ROWS).to_numpy()
    text = [_only_text(values) for _, values in X.items()] + [_only_text(y)]
    string_columns = trimmed.columns[np.asarray(text, dtype=bool)]
    numeric_columns = trimmed.select_dtypes(include=[np.number]).columns
    trimmed = trimmed[string_columns.union(numeric_columns)]
    columns = [*X.columns, label]
    elements = [pd.util.hash_pandas_object(trimmed).values, np.int64(len(X))]
    return get_normalized_md5_digest(elements + [str(x).encode() for x in columns])


def schema_rows(X: pd.DataFrame, y: pd.Series) -> list[int]:
    """Positions of a few rows that hold, for every column, a present value and a missing one where it has any, and
    one value of each Python type in a column of objects: the rows MLflow's schema inference needs to see."""
    import numpy as np

    rows = {0} if len(X) else set()
    for _, values in [*X.items(), (None, y)]:
        missing = values.isna().to_numpy()
        for found in (missing, ~missing):
            if found.any():
                rows.add(int(found.argmax()))
        if pd.api.types.is_object_dtype(values.dtype):
            kinds = values.map(type).to_numpy()
            rows.update(int(np.argmax(kinds == kind)) for kind in set(kinds))
    return sorted(rows)


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
    """Trial runs' start times in the order the searcher proposed the trials (its `trial_index`): each the real
    time of its start, moved between those of the trials proposed before and after it, so that sorting by
    "Created" gives the proposal order."""

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
    release run `run_id`; returns the metrics."""
    import mlflow
    import mlflow.models

    label = y_test.name or c.TARGET
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
            data = evaluation_dataset(X_test, y_test, label, dataset_name)
            with mlflow.start_run(run_id=run_id) if active is None else contextlib.nullcontext():
                result = mlflow.models.evaluate(model_uri, data, model_type=model_type, evaluator_config=config)
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
    return {k: float(v) for k, v in result.metrics.items()}


def evaluation_dataset(X: pd.DataFrame, y: pd.Series, label: str, name: str):
    """The MLflow dataset `mlflow.models.evaluate` scores: the whole frame with its label column `label`, its record's
    digest and schema made as `data_part` makes them."""
    import mlflow.data

    frame = X.copy()
    frame[label] = y.to_numpy()
    data = mlflow.data.from_pandas(frame, targets=label, name=name, digest=pandas_digest(X, y, label))
    with contextlib.suppress(AttributeError):  # a read-only schema in another MLflow: MLflow infers it
        data.schema = sampled_dataset(X, y, label, name).schema  # a cached property: set, it is not inferred
    return data


def link_evaluation(client: MlflowClient, name: str, version: str, run_id: str) -> None:
    """Name the run holding the evaluation on the registered version (tag `evaluation_run_id`)."""
    client.set_model_version_tag(name, version, c.EVALUATION_RUN_ID, run_id)
