"""Several objectives (a score against a serving cost): their specs, the Pareto front of a trial table, its table.

`--objectives val_accuracy,predict_ms`: scores are maximised, errors and costs minimised. Only completed trials
count; duplicates of a front point are on the front too.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from search.common import contract
from search.common.errors import UsageError
from search.common.runs_table import markdown_table, text_table
from search.common.trials import Rows, completed, number, records

SCORE_PREFIXES = ("val_", "train_")
UNITS = {contract.PREDICT_MS: "ms", contract.MODEL_BYTES: "bytes", contract.FIT_TIME_S: "s"}
COSTS = (*contract.COSTS, contract.FIT_TIME_S)  # serving costs first
COST_MEANING = {
    contract.PREDICT_MS: "CPU ms to predict 1,000 rows",
    contract.MODEL_BYTES: "fitted Pipeline, pickled",
    contract.FIT_TIME_S: "mean fit time of one fold",
}


@dataclass(frozen=True)
class Objective:
    """One trial metric and whether a search wants it high (`max`) or low (`min`)."""

    name: str
    mode: str

    @property
    def direction(self) -> str:
        """`higher is better` or `lower is better`."""
        return "higher is better" if self.mode == "max" else "lower is better"

    @property
    def unit(self) -> str:
        """The metric's unit (empty for a score)."""
        return UNITS.get(self.name, "")

    def label(self) -> str:
        """`predict_ms (ms, lower is better)`: the name, unit and direction, for a column or an axis."""
        inside = f"{self.unit}, {self.direction}" if self.unit else self.direction
        return f"{self.name} ({inside})"


def objective(name: str) -> Objective:
    """The objective of metric `name`; UsageError names the known ones for an unknown metric."""
    if name.startswith(SCORE_PREFIXES) and len(name) > 4:
        return Objective(name, contract.mode_of(name))  # an error (RMSE, MAE, log loss) is minimised
    if name in COSTS:
        return Objective(name, "min")
    raise UsageError(
        f"unknown objective {name!r} in --objectives: give scores val_*/train_* (maximised, e.g. val_accuracy; "
        f"errors such as val_rmse minimised) or costs {', '.join(COSTS)} (minimised), comma-separated, e.g. "
        "val_accuracy,predict_ms"
    )


def parse_objectives(text: str) -> list[Objective]:
    """`val_accuracy,predict_ms` as objectives: two or more distinct metrics, the first one the scheduler's."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    objectives = [objective(n) for n in names]
    if len(set(names)) != len(names):
        raise UsageError(f"--objectives {text!r} names a metric twice: give each metric once")
    if len(objectives) < 2:
        raise UsageError(f"--objectives {text!r} needs two or more metrics, e.g. val_accuracy,predict_ms")
    return objectives


def searcher_args(objectives: Sequence[Objective], seed: int) -> dict[str, Any]:
    """OptunaSearch's `metric`, `mode` (lists) and a seeded TPE sampler for several objectives: TPE handles the
    conditional space and samples as a one-objective search does; NSGA-II starts with 50 random trials."""
    from optuna.samplers import TPESampler

    return dict(metric=[o.name for o in objectives], mode=[o.mode for o in objectives], sampler=TPESampler(seed=seed))


def _gains(rows: list[Mapping[str, Any]], objectives: Sequence[Objective]) -> np.ndarray:
    """Objective values with minimised ones negated: higher is better in every column."""
    values = np.array([[number(r.get(o.name)) for o in objectives] for r in rows], dtype=float).reshape(len(rows), -1)
    signs = np.array([1.0 if o.mode == "max" else -1.0 for o in objectives])
    return values * signs


def pareto_mask(trials: Rows, objectives: Sequence[Objective]) -> list[bool]:
    """For each row: True when it is a completed trial with every objective recorded that no other such trial
    dominates. Rows ASHA stopped, failed or unfinished are never on the front."""
    rows = records(trials)
    gains = _gains(rows, objectives)
    counted = np.array([completed(r) for r in rows], dtype=bool) & ~np.isnan(gains).any(axis=1)
    pool = gains[counted]
    mask = np.zeros(len(rows), dtype=bool)
    for i in np.flatnonzero(counted):
        ge = (pool >= gains[i]).all(axis=1)
        gt = (pool > gains[i]).any(axis=1)
        mask[i] = not (ge & gt).any()
    return mask.tolist()


def dominates(a: Mapping[str, Any], b: Mapping[str, Any], objectives: Sequence[Objective]) -> bool:
    """Whether trial `a` is at least as good as `b` on every objective and better on one."""
    ga, gb = _gains([a, b], objectives)
    return bool((ga >= gb).all() and (ga > gb).any())


def front(trials: Rows, objectives: Sequence[Objective]) -> list[Mapping[str, Any]]:
    """The front's trials, best first on the first objective (then on the next ones, then trial order)."""
    rows = records(trials)
    chosen = [r for r, on in zip(rows, pareto_mask(rows, objectives), strict=True) if on]

    def key(row: Mapping[str, Any]) -> tuple[float, ...]:
        gains = _gains([row], objectives)[0]
        return (*(-gains), number(row.get(contract.TRIAL_INDEX)))

    return sorted(chosen, key=key)


def _fmt(value: Any) -> str:
    x = number(value)
    if math.isnan(x):
        return "" if value is None or isinstance(value, float) else str(value)
    return f"{int(x):,}" if x.is_integer() and abs(x) >= 1000 else f"{x:.4g}"


def front_table(rows: Sequence[Mapping[str, Any]], objectives: Sequence[Objective], markdown: bool = False) -> str:
    """The front as a table (console text, or Markdown for the report and the parent run)."""
    head = ["trial", contract.MODEL, "feature set", *[o.label() for o in objectives]]
    body = [
        [
            str(r.get("run_name") or r.get(contract.TRIAL_INDEX) or r.get("run_id") or "?"),
            str(r.get(contract.MODEL) or ""),
            str(r.get(contract.FEATURE_SET) or ""),
            *[_fmt(r.get(o.name)) for o in objectives],
        ]
        for r in rows
    ]
    right = [False] * 3 + [True] * len(objectives)
    return (markdown_table if markdown else text_table)(head, body, right)
