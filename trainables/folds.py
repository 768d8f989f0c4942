"""A trial's finished folds, kept so that a trial whose worker disappears resumes from its last kept fold.

The folds' own numbers are kept, so a resumed trial reports the means an undisturbed one reports, to the last bit.
A checkpoint costs about as much as a cheap Iris fold (BENCHMARKS.md, "Fold checkpoints"), so a fold is kept when
the trial reports every fold anyway (ASHA), else once `KEEP_AFTER_S` seconds of fitting would be lost without it;
as a Tune checkpoint where every node sees Tune's storage, else in the trial's MLflow run (`RunFolds`).
"""

from __future__ import annotations

import json
import os
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
    """The folds a trial has finished: scores, fit times, summed confusion matrix or (a regressor's) a sample of
    [actual, predicted] `pairs`, and the serving cost."""

    n_classes: int  # 0 for a regressor
    scores: dict[str, list[float]] = field(default_factory=dict)
    fit_times: list[float] = field(default_factory=list)
    matrix: list[list[int]] | None = None
    cost: dict[str, float] = field(default_factory=dict)
    pairs: list[list[float]] = field(default_factory=list)

    @property
    def done(self) -> int:
        return len(self.fit_times)

    def add(
        self, scores: dict[str, float], val_matrix: np.ndarray | None, fit_time: float, pairs: list | None = None
    ) -> None:
        """Record one more finished fold: its confusion matrix, or for a regressor a sample of its predictions."""
        for key, value in scores.items():
            self.scores.setdefault(key, []).append(float(value))
        self.fit_times.append(float(fit_time))
        if val_matrix is not None:
            summed = np.asarray(self.matrix, dtype=int) if self.matrix is not None else 0
            self.matrix = (summed + val_matrix).tolist()
        self.pairs += pairs or []

    def running(self) -> dict[str, float]:
        """The means over the finished folds, the serving cost, the mean fit time, `folds_done` and `fidelity`."""
        means = {k: float(np.mean(v)) for k, v in self.scores.items()}
        done = {c.FOLDS_DONE: self.done, c.FIDELITY: 1.0}  # every row of each fold
        return {**means, **self.cost, c.FIT_TIME_S: float(np.mean(self.fit_times)), **done}

    def to_json(self) -> str:
        return json.dumps({"n_classes": self.n_classes, "scores": self.scores, "fit_times": self.fit_times,
                           "matrix": self.matrix, "cost": self.cost, "pairs": self.pairs})  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> FoldProgress:
        return cls(**json.loads(text))


def storage_reachable(marker: str | None) -> bool:
    """True when `marker`, a file the driver wrote in Tune's storage, is visible here: every node reads it."""
    return bool(marker) and Path(marker).is_file()


@dataclass
class RunFolds:
    """A trial's kept folds as a tag of its MLflow run, for a worker that does not see Tune's storage: at the node's
    MLFLOW_TRACKING_URI if it has one (the driver's may name the driver's host), else the driver's. A server that
    does not answer costs one short try; keeping folds never fails or holds up a trial."""

    tracking_uri: str
    experiment_id: str
    search_id: str
    run_ids: dict[str, str] = field(default_factory=dict)

    def _client(self):
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
        from mlflow import MlflowClient

        return MlflowClient(os.environ.get("MLFLOW_TRACKING_URI") or self.tracking_uri)

    def _run(self, client, trial_id: str):
        query = f"tags.{c.SEARCH_ID} = '{self.search_id}' and tags.{c.TRIAL_ID} = '{trial_id}'"
        runs = client.search_runs([self.experiment_id], query, max_results=1)
        if runs:
            self.run_ids[trial_id] = runs[0].info.run_id
        return runs[0] if runs else None

    def load(self, trial_id: str) -> FoldProgress | None:
        """The folds an earlier attempt of the trial kept in its run, or None."""
        try:
            run = self._run(self._client(), trial_id)
        except Exception:  # the tracking server is down or refuses: start from the first fold
            return None
        text = run.data.tags.get(c.FOLDS_KEPT) if run is not None else None
        return FoldProgress.from_json(text) if text else None

    def save(self, trial_id: str, progress: FoldProgress) -> bool:
        """Keep `progress` on the trial's run; False when it could not be."""
        text = progress.to_json()
        if len(text) > c.MAX_TAG_CHARS:
            return False
        try:
            client = self._client()
            if trial_id not in self.run_ids:
                self._run(client, trial_id)
            if trial_id not in self.run_ids:  # the driver has not opened the trial's run yet
                return False
            client.set_tag(self.run_ids[trial_id], c.FOLDS_KEPT, text)
            return True
        except Exception:  # as in load: the folds are not kept this time
            return False


class FoldKeeper:
    """Restores a trial's kept folds and says when the next is worth keeping (a checkpoint, else in `runs`)."""

    def __init__(
        self, every_fold: bool, reachable: bool, keep_after_s: float | None = None, runs: RunFolds | None = None
    ):
        self.every_fold = every_fold
        self.reachable = reachable
        self.runs = None if reachable else runs
        self.keep_after_s = KEEP_AFTER_S if keep_after_s is None else keep_after_s
        self.kept_at = time.perf_counter()
        self.restored = 0

    def restore(self) -> FoldProgress | None:
        """The folds kept by an earlier attempt of this trial (Tune's latest checkpoint, or its run), or None."""
        from ray import tune

        progress = None
        if self.runs is not None:
            progress = self.runs.load(tune.get_context().get_trial_id())
        elif (checkpoint := tune.get_checkpoint()) is not None:
            with checkpoint.as_directory() as folder:
                progress = FoldProgress.from_json((Path(folder) / STATE_FILE).read_text())
        self.restored = progress.done if progress is not None else 0
        return progress

    def wants(self) -> bool:
        """Whether to keep the folds finished so far (called after each fold but the last)."""
        due = time.perf_counter() - self.kept_at >= self.keep_after_s
        if self.reachable:
            return self.every_fold or due
        return self.runs is not None and due

    def report(self, metrics: dict, progress: FoldProgress) -> None:
        """Keep the folds so far: as the checkpoint of a report of `metrics`, or in the trial's run."""
        from ray import tune

        if self.runs is not None:
            self.runs.save(tune.get_context().get_trial_id(), progress)
            self.kept_at = time.perf_counter()
            if self.every_fold:
                tune.report(metrics)
            return
        folder = tempfile.mkdtemp(prefix="folds-")
        try:
            (Path(folder) / STATE_FILE).write_text(progress.to_json())
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        self.kept_at = time.perf_counter()
