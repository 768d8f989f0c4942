"""A release under a serving budget: which completed trials fit `--max-predict-ms` / `--max-model-mb` (one that does
not record a budgeted metric is ruled out), and the best of them by the release's ranking."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search.common import contract as c
from search.common.errors import NothingToDo, UsageError
from search.common.trials import Rows, number, rank_trials

MB = 1_000_000


@dataclass(frozen=True)
class Budget:
    """The serving budget of a release; None means no limit on that cost."""

    max_predict_ms: float | None = None
    max_model_mb: float | None = None

    def __post_init__(self) -> None:
        for flag, value in (("--max-predict-ms", self.max_predict_ms), ("--max-model-mb", self.max_model_mb)):
            if value is not None and not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise UsageError(f"{flag} is {value}: give a positive number")

    @property
    def active(self) -> bool:
        """Whether any limit is set."""
        return self.max_predict_ms is not None or self.max_model_mb is not None

    def limits(self) -> list[tuple[str, float]]:
        """(trial metric, its upper limit in the metric's own unit) per set limit."""
        limits = ((c.PREDICT_MS, self.max_predict_ms, 1), (c.MODEL_BYTES, self.max_model_mb, MB))
        return [(name, float(limit) * unit) for name, limit, unit in limits if limit is not None]

    def describe(self) -> str:
        """`predict_ms <= 2 ms, model <= 0.5 MB`."""
        parts = []
        if self.max_predict_ms is not None:
            parts.append(f"predict_ms <= {self.max_predict_ms:g} ms")
        if self.max_model_mb is not None:
            parts.append(f"model <= {self.max_model_mb:g} MB")
        return ", ".join(parts) or "no budget"

    def excess(self, row: Mapping[str, Any]) -> str | None:
        """Why `row` breaks the budget (`predict_ms 3.1 ms > 2 ms`), or None when it fits."""
        reasons = []
        for name, limit in self.limits():
            value = number(row.get(name))
            if math.isnan(value):
                reasons.append(f"no {name} recorded")
            elif value > limit:
                reasons.append(f"{_cost(name, value)} > {_cost(name, limit)}")
        return "; ".join(reasons) or None


@dataclass
class BudgetChoice:
    """The best trial within budget, every candidate within it (best first) and those it ruled out (best first)."""

    best: Mapping[str, Any]
    within: list[Mapping[str, Any]]
    ruled_out: list[tuple[Mapping[str, Any], str]] = field(default_factory=list)
    budget: Budget = field(default_factory=Budget)

    def ruled_out_line(self, limit: int = 5) -> str:
        """One line: how many trials the budget ruled out and the best of them with the reason."""
        if not self.ruled_out:
            return f"budget {self.budget.describe()}: ruled out none of the {len(self.within)} completed trials"
        shown = ", ".join(f"{_name(r)} ({why})" for r, why in self.ruled_out[:limit])
        more = f" and {len(self.ruled_out) - limit} more" if len(self.ruled_out) > limit else ""
        n = len(self.ruled_out) + len(self.within)
        return f"budget {self.budget.describe()} ruled out {len(self.ruled_out)} of {n} completed trials: {shown}{more}"


def _cost(name: str, value: float) -> str:
    if name == c.MODEL_BYTES:
        return f"{value / MB:.3g} MB"
    return f"{value:.3g} ms" if name == c.PREDICT_MS else f"{name} {value:.3g}"


def _name(row: Mapping[str, Any]) -> str:
    return str(row.get("run_name") or f"trial {row.get(c.TRIAL_INDEX)}")


def choose_within(trials: Rows, budget: Budget, metric: str = c.VAL_ACCURACY) -> BudgetChoice:
    """The best completed trial within `budget` by `metric` and the release's tie-break; NothingToDo when none fits."""
    ranked, what = rank_trials(trials, metric), "completed trials"
    within = [r for r in ranked if budget.excess(r) is None]
    ruled_out = [(r, budget.excess(r) or "") for r in ranked if budget.excess(r) is not None]
    if not ranked:
        raise NothingToDo(f"no {what} with a {metric} score: nothing to release")
    if not within:
        raise NothingToDo(
            f"no trial fits the budget {budget.describe()}: all {len(ranked)} {what} break it, the cheapest "
            f"being {_cheapest(ranked, budget)}; raise --max-predict-ms / --max-model-mb or search cheaper models"
        )
    return BudgetChoice(within[0], within, ruled_out, budget)


def _cheapest(rows: list[Mapping[str, Any]], budget: Budget) -> str:
    name, _ = budget.limits()[0]
    known = [r for r in rows if not math.isnan(number(r.get(name)))]
    if not known:
        return f"none (no trial records {name})"
    row = min(known, key=lambda r: number(r.get(name)))
    costs = ", ".join(_cost(n, number(row.get(n))) for n, _ in budget.limits() if not math.isnan(number(row.get(n))))
    return f"{_name(row)} ({costs})"
