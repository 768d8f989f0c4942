"""How the best trial is chosen, in one place: the driver's summary and the release use the same rule.

Rule: higher `metric` (default `val_accuracy`); ties broken by higher `val_f1`, then lower `fit_time_s`,
then the earlier trial (lower `trial_index`). Only trials that finished every fold are eligible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

TIE_BREAK = "higher val_f1, then lower fit_time_s, then the earlier trial"


def _number(row: Mapping[str, Any], key: str, default: float) -> float:
    value = row.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return default
    return default if math.isnan(value) else value


def eligible(row: Mapping[str, Any]) -> bool:
    """A trial that ran every fold and has a score."""
    folds, done = row.get("cv_folds"), row.get("folds_done")
    complete = folds is None or done is None or int(float(done)) >= int(float(folds))
    return complete and row.get("val_accuracy") is not None


def rank_trials(rows: Iterable[Mapping[str, Any]], metric: str = "val_accuracy") -> list[Mapping[str, Any]]:
    """Eligible trials, best first, by `metric` and the stated tie-break."""

    def key(row: Mapping[str, Any]) -> tuple[float, ...]:
        return (
            -_number(row, metric, -math.inf),
            -_number(row, "val_f1", -math.inf),
            _number(row, "fit_time_s", math.inf),
            _number(row, "trial_index", math.inf),
        )

    return sorted((r for r in rows if eligible(r)), key=key)
