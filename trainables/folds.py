"""A trial's finished folds, kept as a Tune checkpoint so that a trial whose worker disappears resumes on another
worker from its last kept fold instead of starting over.

What is kept is the folds' own numbers (each fold's scores and fit time, the summed out-of-fold confusion matrix,
the first fold's serving cost): the means a resumed trial reports are the means an undisturbed trial reports, to the
last bit, since the folds are seeded and the same folds are never fitted twice.

When a fold is kept (`FoldKeeper.wants`): a checkpoint costs a report to Tune and a copy into Tune's storage, about
as much as a cheap Iris fold itself (BENCHMARKS.md, "Fold checkpoints"). So a trial keeps a fold
- whenever it reports every fold anyway (`--scheduler asha`): the checkpoint rides on a report Tune makes regardless;
- otherwise (one report per trial, the default) only once at least `KEEP_AFTER_S` seconds of fitting would be lost
  without it: cheap trials never checkpoint and pay nothing; a trial of minutes loses at most that much;
- and only where the checkpoint can be read back from every node: Tune's storage is a folder this node sees (the
  driver's study journal is there). A worker that shares no storage with the driver (compose) keeps nothing and a
  lost trial starts over, as before.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from search.common import contract as c

KEEP_AFTER_S = 2.0  # seconds of unkept fitting worth a checkpoint when a trial reports once (FIFO)
STATE_FILE = "folds.json"


@dataclass
class FoldProgress:
    """The folds a trial has finished: their scores, fit times, summed confusion matrix and the serving cost."""

    n_classes: int
    scores: dict[str, list[float]] = field(
        default_factory=lambda: {k: [] for k in (c.VAL_ACCURACY, c.VAL_F1, c.TRAIN_ACCURACY, c.TRAIN_F1)}
    )
    fit_times: list[float] = field(default_factory=list)
    matrix: list[list[int]] | None = None
    cost: dict[str, float] = field(default_factory=dict)

    @property
    def done(self) -> int:
        """Folds finished."""
        return len(self.fit_times)

    def add(self, scores: dict[str, float], val_matrix: np.ndarray, fit_time: float) -> None:
        """Record one more finished fold."""
        for key, value in scores.items():
            self.scores[key].append(float(value))
        self.fit_times.append(float(fit_time))
        summed = np.asarray(self.matrix, dtype=int) if self.matrix is not None else 0
        self.matrix = (summed + val_matrix).tolist()

    def running(self) -> dict[str, float]:
        """The means over the finished folds, the serving cost, the mean fit time and `folds_done`."""
        means = {k: float(np.mean(v)) for k, v in self.scores.items()}
        return {**means, **self.cost, c.FIT_TIME_S: float(np.mean(self.fit_times)), c.FOLDS_DONE: self.done}

    def to_json(self) -> str:
        return json.dumps({"n_classes": self.n_classes, "scores": self.scores, "fit_times": self.fit_times,
                           "matrix": self.matrix, "cost": self.cost})  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> FoldProgress:
        return cls(**json.loads(text))


def storage_reachable(marker: str | None) -> bool:
    """True when a checkpoint written here can be read on every node: `marker`, a file the driver wrote into the
    search's folder in Tune's storage, is visible on this node."""
    return bool(marker) and Path(marker).is_file()


class FoldKeeper:
    """Restores a trial's kept folds, and says when the next finished fold is worth a checkpoint."""

    def __init__(self, every_fold: bool, reachable: bool, keep_after_s: float | None = None):
        self.every_fold = every_fold
        self.reachable = reachable
        self.keep_after_s = KEEP_AFTER_S if keep_after_s is None else keep_after_s
        self.kept_at = time.perf_counter()
        self.restored = 0

    def restore(self) -> FoldProgress | None:
        """The folds kept by an earlier attempt of this trial (Tune's latest checkpoint), or None."""
        from ray import tune

        checkpoint = tune.get_checkpoint()
        if checkpoint is None:
            return None
        with checkpoint.as_directory() as folder:
            progress = FoldProgress.from_json((Path(folder) / STATE_FILE).read_text())
        self.restored = progress.done
        return progress

    def wants(self) -> bool:
        """Whether to keep the folds finished so far (called after each fold but the last)."""
        if not self.reachable:
            return False
        return self.every_fold or time.perf_counter() - self.kept_at >= self.keep_after_s

    def report(self, metrics: dict, progress: FoldProgress) -> None:
        """Report `metrics` to Tune with the folds so far as its checkpoint."""
        from ray import tune

        folder = tempfile.mkdtemp(prefix="folds-")
        try:
            (Path(folder) / STATE_FILE).write_text(progress.to_json())
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.kept_at = time.perf_counter()
