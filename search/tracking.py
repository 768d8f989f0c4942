"""MLflow tracking of a search: the parent run, and Ray's MLflow callback reshaped to one child run per trial.

Ray's stock `MLflowLoggerCallback` sends one request per metric on the driver's loop and writes flat runs.
`TrialTracker` keeps its interface but creates each trial's run under the search's parent run, keeps the
trial's last result, and at trial end hands one batch (params, metrics, tags), the confusion matrix and the
final status to a background writer, so the driver goes on scheduling trials while it is written.
"""

from __future__ import annotations

import json
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.air.integrations.mlflow import MLflowLoggerCallback

from search.figures import save_confusion_matrix
from trainables.space import flat_params

TRIAL_METRICS = ("val_accuracy", "val_f1", "train_accuracy", "train_f1", "fit_time_s", "folds_done")
TRIAL_TAGS = ("node", "hostname")


class BackgroundWriter:
    """One thread that runs queued writes in order, retrying each with backoff; `close` waits for all.

    The default backoff (0.5 s doubling to 30 s, 8 retries) rides out a tracking server that is away for
    about a minute and a half; a write that still fails is kept in `failures` and reported, never raised.
    """

    def __init__(self, delays: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 30, 30)):
        self._queue: queue.Queue[Callable[[], None] | None] = queue.Queue()
        self._delays = delays
        self.failures: list[str] = []
        self._thread = threading.Thread(target=self._loop, name="mlflow-writer", daemon=True)
        self._thread.start()

    def submit(self, write: Callable[[], None]) -> None:
        """Queue a write."""
        self._queue.put(write)

    def _loop(self) -> None:
        while (write := self._queue.get()) is not None:
            for delay in (*self._delays, None):
                try:
                    write()
                    break
                except Exception as exc:  # noqa: BLE001 - a lost write is reported, never raised into Tune
                    if delay is None:
                        self.failures.append(f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}")
                        print(f"warning: an MLflow write failed after retries: {self.failures[-1]}", file=sys.stderr)
                    else:
                        time.sleep(delay)

    def close(self) -> None:
        """Write everything queued, then stop the thread."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class TrialTracker(MLflowLoggerCallback):
    """Ray's MLflow callback, batched and nested: one child run per trial under the search's parent run.

    Every MLflow request goes through one background writer, so the driver's loop never waits on the server:
    a trial costs one `create_run` at its start, and one `log_batch`, one artifact upload and one
    `set_terminated` at its end. Runs are keyed by Tune's trial id; on a resumed search the runs already made
    are found by their `trial_id` tag and reused, so a trial is never tracked twice.
    """

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: dict[str, str], classes: list):
        super().__init__(tracking_uri=tracking_uri, tags=tags)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.classes = classes
        self.writer: BackgroundWriter | None = None
        self.trials: dict[str, tuple[str, int]] = {}  # Tune trial id -> (MLflow run id, trial index)

    def setup(self, *args, **kwargs) -> None:
        self.client = MlflowClient(self.tracking_uri)
        self.writer = BackgroundWriter()
        self._started: set[str] = set()
        self._ended: set[str] = set()
        self._last_result: dict[str, dict] = {}
        for run in self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'", max_results=50000
        ):
            tags = run.data.tags
            self.trials[tags["trial_id"]] = (run.info.run_id, int(tags.get("trial_index", -1)))
            if run.info.status == "FINISHED":
                self._ended.add(tags["trial_id"])

    def log_trial_start(self, trial) -> None:
        trial_id = trial.trial_id
        if trial_id in self._started:
            return
        self._started.add(trial_id)
        self._ended.discard(trial_id)
        index = int(trial.config.get("trial_index", -1))
        tags = {
            **self.tags,
            "mlflow.parentRunId": self.parent_run_id,
            "run_type": "trial",
            "trial_id": trial_id,
            "trial_index": str(index),
        }
        self.writer.submit(lambda: self._open(trial_id, str(trial), index, tags))

    def _open(self, trial_id: str, name: str, index: int, tags: dict[str, str]) -> None:
        if trial_id in self.trials:  # a resumed trial: its run exists, reopen it
            self.client.update_run(self.trials[trial_id][0], status="RUNNING")
            return
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags)
        self.trials[trial_id] = (run.info.run_id, index)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        self._last_result[trial.trial_id] = result

    def log_trial_end(self, trial, failed: bool = False) -> None:
        trial_id = trial.trial_id
        if trial_id not in self._started or trial_id in self._ended:
            return
        self._ended.add(trial_id)
        result = self._last_result.pop(trial_id, {})
        params = flat_params(trial.config)
        metrics = {k: float(result[k]) for k in TRIAL_METRICS if k in result}
        tags = {k: str(result[k]) for k in TRIAL_TAGS if k in result}
        tags["outcome"] = outcome(result, trial.config, failed)
        if failed:
            tags["error"] = _first_error_line(trial)
        matrix = json.loads(result["confusion_matrix"]) if "confusion_matrix" in result and not failed else None
        status = "FAILED" if failed else "FINISHED"
        self.writer.submit(lambda: self._write(trial_id, str(trial), params, metrics, tags, matrix, status))

    def _write(self, trial_id, name, params, metrics, tags, matrix, status) -> None:
        run_id = self.trials[trial_id][0]
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        if matrix is not None:
            with tempfile.TemporaryDirectory() as tmp:
                title = f"trial {name}: out-of-fold predictions"
                path = save_confusion_matrix(matrix, self.classes, Path(tmp) / "confusion_matrix.png", title)
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, status=status, end_time=now)

    def on_experiment_end(self, trials, **info) -> None:
        self.close()

    def close(self) -> None:
        """Close runs of trials that never ended (Ctrl-C, a driver error) as KILLED, then flush every write."""
        if self.writer is None:
            return
        for trial_id in self._started - self._ended:
            self._ended.add(trial_id)
            self.writer.submit(lambda t=trial_id: self.client.set_terminated(self.trials[t][0], status="KILLED"))
        self.writer.close()


def outcome(result: dict, config: dict, failed: bool) -> str:
    """`completed` (every fold ran), `stopped` (the scheduler stopped it early) or `failed`."""
    if failed or "folds_done" not in result:
        return "failed"
    return "completed" if int(result["folds_done"]) >= int(config.get("cv_folds", 0)) else "stopped"


def _first_error_line(trial) -> str:
    try:
        error = str(trial.get_error() or "")
    except Exception:  # noqa: BLE001 - an unreadable error file still ends the run as failed
        error = ""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else "trial failed")[:500]


def start_parent_run(
    client: MlflowClient, experiment: str, search_id: str, tags: dict[str, str], params: dict[str, Any]
) -> tuple[str, str]:
    """Create (or reuse) the experiment and the search's parent run; returns (experiment_id, run_id)."""
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    run = client.create_run(
        experiment_id, run_name=f"search-{search_id}", tags={**tags, "search_id": search_id, "run_type": "search"}
    )
    client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    return experiment_id, run.info.run_id
