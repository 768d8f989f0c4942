"""Which trial a release is made from: the search (by id, or the latest finished one) and its best trial, ranked
by `search.common.trials`; this module reads MLflow and says why the winner won."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities import Run

from search.common import contract as c
from search.common.errors import NothingToDo, UsageError
from search.common.lookup import find_search, search_trials
from search.common.trials import deciding_rule, number, rank_steps, rank_trials, tie_break

if TYPE_CHECKING:
    from search.releasing.budget import Budget


@dataclass(frozen=True)
class Choice:
    """The search, its best trial, the runner-up (if any) and the rule that separated them."""

    search: Run
    best: Run
    runner_up: Run | None
    rule: str
    metric: str
    n_eligible: int

    @property
    def search_id(self) -> str:
        """The id of the search the trial belongs to."""
        return self.search.data.tags[c.SEARCH_ID]


def choose(
    client: MlflowClient,
    experiment: str | None,
    search_id: str | None,
    metric: str | None,
    budget: Budget | None = None,
) -> Choice:
    """The best trial and its runner-up of search `search_id` (default: the latest finished, of `experiment` or any)
    by `metric` (default: the search's); with a serving `budget`, only the trials within it compete."""
    search = find_search(client, search_id, experiment, finished=True)
    sid = search.data.tags[c.SEARCH_ID]
    metric = metric or search.data.params.get(c.METRIC) or c.VAL_ACCURACY
    task = search.data.params.get(c.TASK) or c.CLASSIFICATION
    if c.task_of_metric(metric) != task:
        raise UsageError(
            f"--metric {metric} scores {c.task_of_metric(metric)}, and search {sid} is {task}: use one of "
            f"{', '.join(c.task_metrics(task))}"
        )
    rows = search_trials(client, search.info.experiment_id, sid, finished=True)
    if budget is not None and budget.active:
        from search.releasing.budget import choose_within

        within = choose_within(rows, budget, metric)
        print(within.ruled_out_line())
        rows = within.within
    ranked = rank_trials(rows, metric)
    if not ranked:
        raise NothingToDo(f"search {sid} has no finished trial with a {metric} score: nothing to release")
    best = ranked[0]
    other = ranked[1] if len(ranked) > 1 else None
    rule = deciding_rule(best, other, metric)
    return Choice(search, best.run, other.run if other else None, rule, metric, len(ranked))


def describe(choice: Choice) -> str:
    """Lines saying which trial was chosen and why."""
    best = choice.best
    m = choice.metric
    way = rank_steps(m)[0][1]
    lines = [
        f"search {choice.search_id}: {choice.n_eligible} eligible trial(s), ranked by {way} {m}, ties: {tie_break(m)}",
        f"chosen: trial run {best.info.run_id} ({best.info.run_name}) {_summary(best, m)}",
    ]
    if choice.runner_up is not None:
        lines.append(f"runner-up: trial run {choice.runner_up.info.run_id} {_summary(choice.runner_up, m)}")
    lines.append(f"decided by: {choice.rule}")
    return "\n".join(lines)


def _summary(run: Run, metric: str) -> str:
    p, mt = run.data.params, run.data.metrics
    return f"model={p.get(c.MODEL)} feature_set={p.get(c.FEATURE_SET)} {metric}={_fmt(mt.get(metric))}"


def _fmt(value: Any) -> str:
    value = number(value)
    return "n/a" if math.isnan(value) else f"{value:.4g}"
