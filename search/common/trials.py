"""A trial as the project understands it, built alike from its MLflow run and from Tune's result, and read one way.

`Trial` is the record; `outcome` the one rule of what became of a trial; `rank_trials` the one rule of which trial
is best. A Trial reads as a mapping of its flat row, so the ranking, the Pareto front and the budget take Trials and
plain rows alike.
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

FIT_TIME_RTOL, FIT_TIME_ATOL = 0.10, 0.001  # fit times within 10% of the faster, or within 1 ms, are equal
FIT_TIME_TIE = f"within {FIT_TIME_RTOL:.0%} or {FIT_TIME_ATOL * 1000:g} ms"
SCORE_RTOL = 1e-9  # scores equal up to float rounding (fold means summed in another order) are equal
TAGS = (c.TRIAL_ID, *c.NODE_TAGS, c.ERROR, c.PARETO_FRONT)
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
    flat.update({c.TEXT_FEATURES: config[c.TEXT_FEATURES]} if c.TEXT_FEATURES in config else {})
    flat.update(hyperparams_of(config))
    flat.update({k: config[k] for k in c.TRIAL_CONSTANTS if k in config})
    return flat


def status_of(metrics: Mapping[str, Any], failed: bool = False, ended: bool = False) -> str:
    """A trial's MLflow status from what Tune told of it (`outcome` reads it): its own error or Tune's -> FAILED; a
    result with `folds_done` -> FINISHED; none yet -> RUNNING, or KILLED once the search's end cut it (`ended`)."""
    if failed or c.ERROR in metrics:
        return "FAILED"
    if c.FOLDS_DONE in metrics:
        return "FINISHED"
    return "KILLED" if ended else "RUNNING"


def outcome(row: Mapping[str, Any]) -> c.Outcome:
    """What became of a trial, from its MLflow status (FINISHED when absent), `folds_done` and `cv_folds`: FAILED
    is failed, KILLED stopped, RUNNING unfinished; FINISHED is completed when every fold ran, stopped when fewer
    did (ASHA), no_result with no score at all."""
    status = row.get("status") or "FINISHED"
    if status == "FAILED":
        return c.FAILED
    if status == "KILLED":
        return c.STOPPED
    if status != "FINISHED":
        return c.UNFINISHED
    done, folds = number(row.get(c.FOLDS_DONE)), number(row.get(c.CV_FOLDS))
    if math.isnan(done) and not scored(row):
        return c.NO_RESULT
    return c.COMPLETED if math.isnan(done) or math.isnan(folds) or done >= folds else c.STOPPED


def scored(row: Mapping[str, Any]) -> bool:
    """Whether a trial has its task's first score: a classifier's accuracy, a regressor's RMSE."""
    return not (math.isnan(number(row.get(c.VAL_ACCURACY))) and math.isnan(number(row.get(c.VAL_RMSE))))


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
        cls, config: Mapping[str, Any], metrics: Mapping[str, Any], failed: bool = False, run_id: str = "",
        ended: bool = False, **tags: str,
    ) -> Trial:  # fmt: skip
        """The trial of a Tune result (config and last metrics), as its run records it; NaN scores left out."""
        fixed = {k: config[k] for k in c.TRIAL_CONSTANTS if k in config}
        params = flat_params(dict(config)) if c.MODEL in config else fixed
        if c.TRIAL_ID in metrics:
            tags.setdefault(c.TRIAL_ID, str(metrics[c.TRIAL_ID]))
        tags.update({k: str(metrics[k]) for k in c.NODE_TAGS if k in metrics})
        return cls(
            index=_index(config.get(c.TRIAL_INDEX)),
            params={k: str(v) for k, v in params.items()},
            metrics={k: float(metrics[k]) for k in c.TRIAL_METRICS if k in metrics and metrics[k] == metrics[k]},
            status=status_of(metrics, failed, ended),
            run_id=run_id,
            run_name=c.trial_run_name(config) if c.MODEL in config else "",
            tags=tags,
        )

    @property
    def trial_id(self) -> str:
        return self.tags.get(c.TRIAL_ID, "")

    @property
    def outcome(self) -> c.Outcome:
        return outcome({"status": self.status, **self.params, **self.metrics})

    def row(self) -> dict[str, Any]:
        """The flat row of the report's trial table: identity, tags, metrics, params, outcome."""
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


def rank_steps(metric: str = c.VAL_ACCURACY) -> list[tuple[str, str]]:
    """The ranking's rules in order, each (column, the better way): `metric`, its partner score, fit time, index."""
    steps = [(metric, "lower" if metric in c.MINIMISED else "higher")]
    partner = c.partner_of(metric)
    steps += [(partner, "lower" if partner in c.MINIMISED else "higher")] if metric != c.VAL_F1 else []
    return [*steps, (c.FIT_TIME_S, "lower"), (c.TRIAL_INDEX, "earlier")]


def tie_break(metric: str = c.VAL_ACCURACY) -> str:
    """The ranking's tie-break after `metric`, in words."""
    words = [f"{better} {column}" for column, better in rank_steps(metric)[1:-1]]
    words[-1] += f" ({FIT_TIME_TIE} counts as equal)"
    return ", then ".join([*words, "the earlier trial"])


def same(column: str, a: Any, b: Any) -> bool:
    """Whether two values of a ranking column make no difference: missing alike, the same trial index, fit times
    within FIT_TIME_RTOL of the faster or FIT_TIME_ATOL, other scores equal up to SCORE_RTOL."""
    x, y = number(a), number(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if column == c.TRIAL_INDEX:
        return x == y
    if column == c.FIT_TIME_S:
        return abs(x - y) <= max(FIT_TIME_ATOL, FIT_TIME_RTOL * min(abs(x), abs(y)))
    return math.isclose(x, y, rel_tol=SCORE_RTOL, abs_tol=1e-12)


def rank_trials(trials: Rows | Iterable[Mapping[str, Any]], metric: str = c.VAL_ACCURACY) -> list[Mapping[str, Any]]:
    """Completed trials best first, rule by rule (`rank_steps`): the best value and every value `same` as it form a
    tie, ordered by the next rule. The result does not depend on the input order."""
    rows = records(trials) if isinstance(trials, pd.DataFrame) else trials
    eligible = [r for r in rows if completed(r) and scored(r)]
    return _ranked(eligible, rank_steps(metric))


def _ranked(rows: list[Mapping[str, Any]], steps: list[tuple[str, str]]) -> list[Mapping[str, Any]]:
    if len(rows) < 2 or not steps:
        return rows
    (column, better), rest = steps[0], steps[1:]
    sign = -1.0 if better == "higher" else 1.0
    rows = sorted(rows, key=lambda r: sign * number(r.get(column), sign * math.inf))
    out: list[Mapping[str, Any]] = []
    start = 0
    while start < len(rows):  # the best value left and those the same as it: one tie, ordered by the next rules
        end = start + 1
        while end < len(rows) and same(column, rows[start].get(column), rows[end].get(column)):
            end += 1
        out += _ranked(rows[start:end], rest)
        start = end
    return out


def deciding_rule(best: Mapping[str, Any], other: Mapping[str, Any] | None, metric: str = c.VAL_ACCURACY) -> str:
    """The first rule of the ranking that tells `best` from `other`, in words (the ties before it named)."""
    if other is None:
        return "the only eligible trial"
    tied: list[str] = []
    for column, better in rank_steps(metric):
        a, b = number(best.get(column)), number(other.get(column))
        if not same(column, a, b):
            prefix = f"tie on {', '.join(tied)}; " if tied else ""
            name = "trial" if column == c.TRIAL_INDEX else column
            return f"{prefix}{better} {name} ({_shown(a)} vs {_shown(b)})"
        close = column == c.FIT_TIME_S and a != b
        tied.append(f"{column} ({_shown(a)} vs {_shown(b)} s: {FIT_TIME_TIE})" if close else column)
    return "identical on every rule; kept the order MLflow returned"


def _shown(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4g}"


def best_per(trials: Rows, column: str, metric: str = c.VAL_ACCURACY) -> dict[str, Mapping[str, Any] | None]:
    """The best completed trial of each value of `column`, in the order the values first appear (None for a value
    with no completed trial)."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in records(trials):
        if row.get(column) is not None:
            groups.setdefault(str(row[column]), []).append(row)
    return {value: next(iter(rank_trials(group, metric)), None) for value, group in groups.items()}
