"""A trial as the project understands it, built alike from its MLflow run and from Tune's result, and read one way.

`Trial` is the record; `outcome` the one rule of what became of a trial; `rank_trials` the one rule of which trial
is best: higher `metric` (default `val_accuracy`); ties broken by higher `val_f1`, then lower `fit_time_s`, then the
earlier trial (lower `trial_index`). Only completed trials (every fold ran) are ranked. A Trial reads as a mapping
of its flat row (the report's trial table), so the ranking, the Pareto front and the budget take Trials and plain
rows alike.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import pandas as pd

from search.common import contract as c

if TYPE_CHECKING:
    from mlflow.entities import Run

TIE_BREAK = "higher val_f1, then lower fit_time_s, then the earlier trial"
TAGS = (c.TRIAL_ID, *c.NODE_TAGS, c.ERROR, c.PARETO_FRONT)
OUTCOMES = (*c.OUTCOMES, c.UNFINISHED, c.NO_RESULT)
RESERVED = {"run_id", "run_name", "status", c.TRIAL_INDEX, "start_time", c.OUTCOME, *TAGS, *c.TRIAL_METRICS}
Rows = pd.DataFrame | Sequence[Mapping[str, Any]]


def number(value: Any, default: float = math.nan) -> float:
    """`value` as a float; `default` for a missing, non-numeric or NaN value."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else value


def hyperparams_of(config: Mapping[str, Any]) -> dict[str, Any]:
    """The model's own hyperparameters from a trial config (`trainables.space` describes its shape)."""
    return dict(config.get(config[c.MODEL], {}))


def flat_params(config: Mapping[str, Any]) -> dict[str, Any]:
    """A trial config as the flat params of its MLflow run."""
    flat = {c.MODEL: config[c.MODEL], c.FEATURE_SET: config[c.FEATURE_SET]}
    flat.update(hyperparams_of(config))
    flat.update({k: config[k] for k in c.TRIAL_CONSTANTS if k in config})
    return flat


def outcome(row: Mapping[str, Any]) -> str:
    """completed (ran every fold), stopped (cut short), failed, unfinished (still running) or no_result (closed
    without any result), from a trial's MLflow status (FINISHED when absent), `folds_done` and `cv_folds`."""
    status = row.get("status") or "FINISHED"
    if status == "FAILED":
        return c.FAILED
    if status == "KILLED":
        return c.STOPPED
    if status != "FINISHED":
        return c.UNFINISHED
    done, folds = number(row.get(c.FOLDS_DONE)), number(row.get(c.CV_FOLDS))
    if math.isnan(done) and math.isnan(number(row.get(c.VAL_ACCURACY))):
        return c.NO_RESULT
    return c.COMPLETED if math.isnan(done) or math.isnan(folds) or done >= folds else c.STOPPED


def completed(row: Mapping[str, Any]) -> bool:
    """Whether a trial ran every fold: its recorded outcome, else `outcome`."""
    return (row.get(c.OUTCOME) or outcome(row)) == c.COMPLETED


@dataclass
class Trial(Mapping[str, Any]):
    """One trial: its order, what it tried (params as MLflow's strings), its scores and costs, how it ended."""

    index: int | None
    params: dict[str, str]
    metrics: dict[str, float]
    status: str
    run_id: str = ""
    run_name: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    start_time: int | None = field(default=None, compare=False)
    run: Run | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_run(cls, run: Run) -> Trial:
        """The trial of an MLflow trial run."""
        tags = run.data.tags
        return cls(
            index=_index(tags.get(c.TRIAL_INDEX)),
            params=dict(run.data.params),
            metrics=dict(run.data.metrics),
            status=run.info.status,
            run_id=run.info.run_id,
            run_name=run.info.run_name,
            tags={k: tags[k] for k in TAGS if k in tags},
            start_time=run.info.start_time,
            run=run,
        )

    @classmethod
    def from_result(
        cls, config: Mapping[str, Any], metrics: Mapping[str, Any], failed: bool = False, run_id: str = "", **tags: str
    ) -> Trial:
        """The trial of a Tune result (its config and last metrics), as its MLflow run records it."""
        fixed = {k: config[k] for k in c.TRIAL_CONSTANTS if k in config}
        params = flat_params(dict(config)) if c.MODEL in config else fixed
        if c.TRIAL_ID in metrics:
            tags.setdefault(c.TRIAL_ID, str(metrics[c.TRIAL_ID]))
        tags.update({k: str(metrics[k]) for k in c.NODE_TAGS if k in metrics})
        return cls(
            index=_index(config.get(c.TRIAL_INDEX)),
            params={k: str(v) for k, v in params.items()},
            metrics={k: float(metrics[k]) for k in c.TRIAL_METRICS if k in metrics},
            status="FAILED" if failed else "FINISHED" if c.FOLDS_DONE in metrics else "RUNNING",
            run_id=run_id,
            run_name=c.trial_run_name(config) if c.MODEL in config else "",
            tags=tags,
        )

    @property
    def trial_id(self) -> str:
        """Tune's id of the trial."""
        return self.tags.get(c.TRIAL_ID, "")

    @property
    def outcome(self) -> str:
        """What became of the trial (`search.common.trials.outcome`)."""
        return outcome({"status": self.status, **self.params, **self.metrics})

    def row(self) -> dict[str, Any]:
        """The flat row of the report's trial table: identity, tags, metrics, params (`param.<name>` for a param
        named like a column), outcome."""
        row: dict[str, Any] = {"run_id": self.run_id, "run_name": self.run_name, "status": self.status}
        row |= {c.TRIAL_INDEX: self.index, "start_time": self.start_time}
        row |= {k: self.tags.get(k) for k in TAGS} | self.metrics
        row |= {param_column(k): v for k, v in self.params.items()}
        return row | {c.OUTCOME: self.outcome}

    @cached_property
    def _row(self) -> dict[str, Any]:
        return self.row()

    def __getitem__(self, key: str) -> Any:
        return self._row[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._row)

    def __len__(self) -> int:
        return len(self._row)


def _index(value: Any) -> int | None:
    return int(value) if str(value).isdigit() else None


def param_column(key: str) -> str:
    """A param's column in the trial table: its name, or `param.<name>` when a column has that name already."""
    return key if key not in RESERVED else f"param.{key}"


def row_dict(row: pd.Series | Mapping[str, Any]) -> dict[str, Any]:
    """A trial row as a plain dict with missing values (NaN, NA) as None."""
    return {k: None if v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v for k, v in dict(row).items()}


def records(trials: Rows) -> list[Mapping[str, Any]]:
    """Trials as a list: a trial table's rows as dicts (missing values as None), a list of Trials or rows as is."""
    if isinstance(trials, pd.DataFrame):
        return [row_dict(r) for r in trials.to_dict("records")]
    return list(trials)


def rank_trials(trials: Rows | Iterable[Mapping[str, Any]], metric: str = c.VAL_ACCURACY) -> list[Mapping[str, Any]]:
    """Completed trials (of a list, or of a trial table), best first, by `metric` and the stated tie-break."""

    sign = -1.0 if c.mode_of(metric) == "max" else 1.0  # best first: the metric's direction from the contract

    def key(row: Mapping[str, Any]) -> tuple[float, ...]:
        return (
            sign * number(row.get(metric), -sign * math.inf),
            -number(row.get(c.VAL_F1), -math.inf),
            number(row.get(c.FIT_TIME_S), math.inf),
            number(row.get(c.TRIAL_INDEX), math.inf),
        )

    rows = records(trials) if isinstance(trials, pd.DataFrame) else trials
    return sorted((r for r in rows if completed(r) and not math.isnan(number(r.get(c.VAL_ACCURACY)))), key=key)


def best_per(trials: Rows, column: str, metric: str = c.VAL_ACCURACY) -> dict[str, Mapping[str, Any] | None]:
    """The best completed trial of each value of `column`, in the order the values first appear (None for a value
    with no completed trial)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in records(trials):
        if row.get(column) is not None:
            groups.setdefault(str(row[column]), []).append(row)
    return {value: next(iter(rank_trials(group, metric)), None) for value, group in groups.items()}
