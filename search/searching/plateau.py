"""`--plateau N`: end a search once N completed trials in a row brought no gain above `--min-delta` to its best.

Only a trial's completing result counts (every fold ran, once per trial): ASHA's per-fold results and Tune's
repeated last result do not.
"""

from __future__ import annotations

import math
from typing import Any

from ray.tune.stopper import Stopper

from search.common import contract as c


class Plateau(Stopper):
    """Stop all trials after `patience` completed trials without a gain above `min_delta` on `metric`."""

    code = c.PLATEAU  # the stop reason it records

    def __init__(self, metric: str, patience: int, min_delta: float, cv_folds: int, mode: str = "max"):
        self.metric, self.patience, self.min_delta, self.cv_folds = metric, patience, min_delta, cv_folds
        self.sign = 1.0 if mode == "max" else -1.0
        self.best = -math.inf
        self.since_best = 0  # completed trials since the last gain above min_delta
        self.completed = 0
        self.fired = False
        self._counted: set[str] = set()

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        score = result.get(self.metric)
        if trial_id in self._counted or score is None or result.get(c.FOLDS_DONE, 0) < self.cv_folds:
            return False
        self._counted.add(trial_id)
        self.completed += 1
        if self.sign * float(score) > self.best + self.min_delta:
            self.best, self.since_best = self.sign * float(score), 0
        else:
            self.since_best += 1
        self.fired = self.fired or self.since_best >= self.patience
        return False

    def replay(self, trials: list) -> None:
        """Count an interrupted search's completed trials in the order they ended: Tune feeds them no more."""
        done = [t for t in trials if t.outcome == c.COMPLETED and self.metric in t.metrics]
        for trial in sorted(done, key=lambda t: (t.run.info.end_time if t.run else 0, t.index or 0)):
            self(trial.trial_id or trial.run_id, {**trial.metrics, c.FOLDS_DONE: self.cv_folds})

    def stop_all(self) -> bool:
        return self.fired

    def reason(self) -> str:
        """One line: why the search ended."""
        return (
            f"no gain above {self.min_delta:g} in {self.metric} over the last {self.since_best} completed trials "
            f"(--plateau {self.patience}), after {self.completed} completed trials"
        )
