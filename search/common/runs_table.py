"""Read one search back from MLflow (docs/tracking.md): its parent run and a table of its trial runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.common.ranking import eligible, rank_trials

METRICS = c.TRIAL_METRICS
TAGS = (c.TRIAL_ID, *c.NODE_TAGS, "error", c.PARETO_FRONT)
LEAD = (c.TRIAL_INDEX, "run_id", "run_name", "status", c.OUTCOME, "model", "feature_set")
CONSTANTS = c.TRIAL_CONSTANTS
OUTCOMES = (*c.OUTCOMES, c.UNFINISHED, c.NO_RESULT)
RESERVED = {"run_id", "run_name", "status", "trial_index", "start_time", "outcome", *TAGS, *METRICS}


@dataclass
class SearchRuns:
    """A search's parent run and one row per trial run (params as MLflow's strings, metrics as floats)."""

    parent: Run
    trials: pd.DataFrame
    hyperparams: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    @property
    def search_id(self) -> str:
        """The search's id (tag `search_id`)."""
        return self.parent.data.tags.get("search_id", "")

    @property
    def metric(self) -> str:
        """The metric the search ranked by (param `metric`, default `val_accuracy`)."""
        return self.parent.data.params.get("metric") or "val_accuracy"


def _all_runs(client: MlflowClient, experiment_id: str, query: str) -> list[Run]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _row(run: Run) -> dict[str, Any]:
    tags, params = run.data.tags, run.data.params
    row: dict[str, Any] = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "status": run.info.status,
        "trial_index": int(tags["trial_index"]) if tags.get("trial_index", "").isdigit() else None,
        "start_time": run.info.start_time,
    }
    row.update({k: tags.get(k) for k in TAGS})
    row.update({k: v for k, v in run.data.metrics.items()})
    row.update({_param_column(k): v for k, v in params.items()})
    return row


def _param_column(key: str) -> str:
    return key if key not in RESERVED else f"param.{key}"


def _none_if_nan(value: Any) -> Any:
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def row_dict(row: pd.Series | dict[str, Any]) -> dict[str, Any]:
    """A trial row as a plain dict with missing values as None (what `search.common.ranking` expects)."""
    return {k: _none_if_nan(v) for k, v in dict(row).items()}


def outcome(row: dict[str, Any]) -> str:
    """completed (ran every fold), stopped (cut short), failed, unfinished (still RUNNING) or no_result."""
    status = row.get("status")
    if status == "FAILED":
        return c.FAILED
    if status == "KILLED":
        return c.STOPPED
    if status != "FINISHED":
        return c.UNFINISHED
    if eligible(row):
        return c.COMPLETED
    return c.STOPPED if row.get("val_accuracy") is not None else c.NO_RESULT


def load_search(client: MlflowClient, experiment: str | None = None, search_id: str | None = None) -> SearchRuns:
    """The parent run and trial table of a search (the latest one, in any experiment unless `experiment` is given);
    trials ordered by `trial_index`, then start time."""
    parent = c.find_search(client, search_id, experiment)
    sid = parent.data.tags.get("search_id", "")
    runs = _all_runs(
        client, parent.info.experiment_id, f"tags.{c.SEARCH_ID} = '{sid}' and tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}'"
    )
    rows = [_row(r) for r in runs if r.data.tags.get("mlflow.parentRunId", parent.info.run_id) == parent.info.run_id]
    frame = pd.DataFrame(rows)
    if frame.empty:
        frame = pd.DataFrame(columns=["run_id", "run_name", "status", "trial_index", "model", "feature_set"])
    for col in ("model", "feature_set", *METRICS, *TAGS):
        if col not in frame:
            frame[col] = None if col not in METRICS else math.nan
    frame["trial_index"] = frame["trial_index"].astype("Int64")
    frame["outcome"] = [outcome(row_dict(r)) for _, r in frame.iterrows()]
    frame = frame.sort_values(["trial_index", "start_time"], na_position="last", kind="stable")
    frame = frame.reset_index(drop=True)
    metric_names = {k for r in runs for k in r.data.metrics}
    metrics = [m for m in METRICS if m in metric_names] + sorted(metric_names - set(METRICS))
    param_names = {_param_column(k) for r in runs for k in r.data.params}
    hyper = sorted(param_names - {"model", "feature_set", *CONSTANTS})
    return SearchRuns(parent=parent, trials=frame, hyperparams=hyper, metrics=metrics)


def ranked(frame: pd.DataFrame, metric: str = "val_accuracy") -> list[dict[str, Any]]:
    """Complete trials, best first, by `search.common.ranking.rank_trials` (the release's rule)."""
    rows = [row_dict(r) for _, r in frame.iterrows() if r["outcome"] == c.COMPLETED]
    return list(rank_trials(rows, metric))


def best_per(frame: pd.DataFrame, column: str, metric: str = "val_accuracy") -> dict[str, dict[str, Any] | None]:
    """The best completed trial of each value of `column` (None for a value with no completed trial)."""
    best: dict[str, dict[str, Any] | None] = {}
    for value, group in frame.groupby(column, sort=False, dropna=True):
        top = ranked(group, metric)
        best[str(value)] = top[0] if top else None
    return best


def summary_table(search: SearchRuns) -> pd.DataFrame:
    """One row per trial: identity, outcome, metrics, hyperparameters, constants, where it ran, its error."""
    frame = search.trials
    columns = [*LEAD, *search.metrics, *search.hyperparams, *CONSTANTS, *TAGS]
    present = [c for c in dict.fromkeys(columns) if c in frame]
    return frame[present].copy()
