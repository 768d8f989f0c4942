"""Read one search back from MLflow: its parent run and a table of its trials; tables as Markdown and console text."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd
from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.common.lookup import find_search, search_trials
from search.common.trials import TAGS, param_column

METRICS = c.TRIAL_METRICS
LEAD = (c.TRIAL_INDEX, "run_id", "run_name", "status", c.OUTCOME, c.MODEL, c.FEATURE_SET, c.TEXT_FEATURES)
CONSTANTS = c.TRIAL_CONSTANTS


@dataclass
class SearchRuns:
    """A search's parent run and the table of its Trials (params as MLflow's strings, metrics as floats)."""

    parent: Run
    trials: pd.DataFrame
    hyperparams: list[str] = field(default_factory=list)
    metrics: list[str] = field(default_factory=list)

    @property
    def search_id(self) -> str:
        return self.parent.data.tags.get(c.SEARCH_ID, "")

    @property
    def metric(self) -> str:
        """The metric the search ranked by (param `metric`, default `val_accuracy`)."""
        return self.parent.data.params.get(c.METRIC) or c.VAL_ACCURACY


def load_search(client: MlflowClient, experiment: str | None = None, search_id: str | None = None) -> SearchRuns:
    """The parent run and trial table (ordered by `trial_index`, then start time) of a search, the latest if unnamed."""
    parent = find_search(client, search_id, experiment)
    pid = parent.info.run_id
    found = search_trials(client, parent.info.experiment_id, parent.data.tags.get(c.SEARCH_ID, ""))
    trials = [t for t in found if t.run.data.tags.get(c.PARENT_RUN_ID, pid) == pid]
    frame = pd.DataFrame([t.row() for t in trials])
    if frame.empty:
        frame = pd.DataFrame(columns=["run_id", "run_name", "status", c.TRIAL_INDEX, "start_time", c.OUTCOME])
    for col in (c.MODEL, c.FEATURE_SET, *METRICS, *TAGS):
        if col not in frame:
            frame[col] = None if col not in METRICS else math.nan
    frame[c.TRIAL_INDEX] = frame[c.TRIAL_INDEX].astype("Int64")
    frame = frame.sort_values([c.TRIAL_INDEX, "start_time"], na_position="last", kind="stable")
    frame = frame.reset_index(drop=True)
    metric_names = {k for t in trials for k in t.metrics}
    metrics = [m for m in METRICS if m in metric_names] + sorted(metric_names - set(METRICS))
    param_names = {param_column(k) for t in trials for k in t.params}
    hyper = sorted(param_names - {c.MODEL, c.FEATURE_SET, c.TEXT_FEATURES, *CONSTANTS})
    return SearchRuns(parent=parent, trials=frame, hyperparams=hyper, metrics=metrics)


def summary_table(search: SearchRuns) -> pd.DataFrame:
    """One row per trial: identity, outcome, metrics, hyperparameters, constants, where it ran, its error."""
    frame = search.trials
    columns = [*LEAD, *search.metrics, *search.hyperparams, *CONSTANTS, *TAGS]
    present = [c for c in dict.fromkeys(columns) if c in frame]
    return frame[present].copy()


def markdown_table(head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool] = ()) -> str:
    """A Markdown table of formatted cells; `right[i]`: column i aligned right."""
    rule = "|" + "|".join("---:" if i < len(right) and right[i] else "---" for i in range(len(head))) + "|"
    return "\n".join(["| " + " | ".join(head) + " |", rule, *("| " + " | ".join(cells) + " |" for cells in rows)])


def text_table(head: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[bool]) -> str:
    """A console table: columns two spaces apart and as wide as their widest cell, a dashed line under the head."""
    widths = [max(len(c) for c in col) for col in zip(head, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths]), *(line(c) for c in rows)])
