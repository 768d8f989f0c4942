"""MLflow tracking of a search's trials: Tune's trial events as one child run per trial, written in the background.

Ray's stock `MLflowLoggerCallback` sends one request per metric on the driver's loop and writes flat runs.
"""

from __future__ import annotations

import queue
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray.tune.logger import LoggerCallback

from search.common import contract as c
from search.common.contract import trial_run_name as run_name
from search.common.errors import UsageError
from search.common.mlflow_records import StartTimes
from search.common.trials import Trial
from search.searching.elastic import FoldLedger


class BackgroundWriter:
    """Threads ("lanes") that run queued writes in order per key, retrying each with backoff (about a minute and a
    half in all); a write that still fails marks the writer `lost` and later writes are dropped (a resumed search
    records them again from Tune's state)."""

    def __init__(self, delays: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 30, 30), lanes: int = 2):
        self._queues: list[queue.Queue[Callable[[], None] | None]] = [queue.Queue() for _ in range(lanes)]
        self._threads: list[threading.Thread | None] = [None] * lanes
        self._delays = delays
        self.failures: list[str] = []
        self.dropped = 0

    @property
    def lost(self) -> bool:
        return bool(self.failures)

    def submit(self, write: Callable[[], None], key: str = "") -> None:
        """Queue a write after the earlier writes with the same key (starting its lane again after a `close`)."""
        lane = zlib.crc32(key.encode()) % len(self._queues)
        thread = self._threads[lane]
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=self._loop, args=(self._queues[lane],), name=f"mlflow-writer-{lane}")
            thread.daemon = True
            thread.start()
            self._threads[lane] = thread
        self._queues[lane].put(write)

    def _loop(self, writes: queue.Queue) -> None:
        while (write := writes.get()) is not None:
            if self.lost:
                self.dropped += 1
                continue
            for delay in (*self._delays, None):
                try:
                    write()
                    break
                except Exception as exc:  # noqa: BLE001 - a lost write is reported, never raised into Tune
                    if delay is None:
                        self.failures.append(f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200]}")
                    else:
                        time.sleep(delay)

    def close(self) -> None:
        """Write everything queued, then stop the threads."""
        for writes, thread in zip(self._queues, self._threads, strict=True):
            if thread is not None and thread.is_alive():
                writes.put(None)
                thread.join()


RESTORED: dict[str, TrialTracker] = {}  # parent run id -> the tracker `Tuner.restore` unpickled in this process


def restored_tracker(parent_run_id: str) -> TrialTracker:
    """The tracker a restored Tuner will drive (the one the interrupted search's Tuner was built with)."""
    if parent_run_id not in RESTORED:
        raise UsageError(f"the Tune state restored has no tracker of parent run {parent_run_id}: it cannot resume")
    return RESTORED.pop(parent_run_id)


class TrialTracker(LoggerCallback):
    """Tune's trial events as one child run per trial under the search's parent run, keyed by Tune's trial id (a
    restored Tuner makes its Trial objects anew), so a resumed trial reopens its run. `stopper`: the search's
    `Ending`; the trials it cut in flight end as stopped, those cut by Ctrl-C stay open for `--resume`."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, tags: dict[str, str], stopper=None):
        self.tracking_uri = tracking_uri
        self.tags = tags  # the lineage tags every trial run gets
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.stopper = stopper
        self.writer: BackgroundWriter | None = None
        self.trials: dict[str, tuple[str, int]] = {}  # Tune trial id -> (MLflow run id, trial index)

    def __setstate__(self, state: dict) -> None:
        """Unpickled by `Tuner.restore`: the resuming driver finds this very tracker (`restored_tracker`)."""
        self.__dict__.update(state)
        RESTORED[self.parent_run_id] = self

    def setup(self, *args, **kwargs) -> None:
        self.client = MlflowClient(self.tracking_uri)
        self.writer = BackgroundWriter()
        self._started: set[str] = set()
        self._ended: set[str] = set()
        self._last_result: dict[str, dict] = {}
        self._folds = FoldLedger()  # lost attempts, folds restored and redone
        self._start_times = StartTimes()  # "Created" in the UI sorts trials in the order they were proposed
        for run in self.client.search_runs(
            [self.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{self.parent_run_id}'", max_results=50000
        ):
            tags = run.data.tags
            self.trials[tags[c.TRIAL_ID]] = (run.info.run_id, int(tags.get(c.TRIAL_INDEX, -1)))
            if run.info.status == "FINISHED":
                self._ended.add(tags[c.TRIAL_ID])

    def log_trial_start(self, trial) -> None:
        self._track_start(trial.trial_id, trial.config)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        self._last_result[trial.trial_id] = result
        self._folds.result(trial.trial_id, result)

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        """An attempt lost with its actor, which Tune retries: recorded on the trial's run."""
        tid = trial.trial_id
        lost = self._folds.lost(tid, _first_error_line(trial))
        attempt = lost[c.LOST_ATTEMPTS]
        print(f"trial {run_name(trial.config)}: attempt {attempt} lost with its actor, running it again", flush=True)
        self._last_result.pop(tid, None)
        if tid in self._started:  # written now, and again with the trial's end
            tags = [RunTag(k, v) for k, v in lost.items()]
            self.writer.submit(lambda: self.client.log_batch(self.trials[tid][0], tags=tags), tid)

    def log_trial_end(self, trial, failed: bool = False) -> None:
        if failed and trial.trial_id not in self._started:  # lost while its first actor started: still one run
            self._track_start(trial.trial_id, trial.config)
        result = self._last_result.pop(trial.trial_id, {})
        error = _first_error_line(trial) if failed else result.get(c.ERROR)  # Tune's error, or the trial's own
        self._track_end(trial.trial_id, trial.config, result, error)

    def _track_start(self, trial_id: str, config: dict, extra_tags: dict[str, str] | None = None) -> None:
        if trial_id in self._started:
            return
        self._started.add(trial_id)
        self._ended.discard(trial_id)
        index = int(config.get(c.TRIAL_INDEX, -1))
        name = run_name(config)
        tags = {
            **self.tags,
            **(extra_tags or {}),
            c.PARENT_RUN_ID: self.parent_run_id,
            c.RUN_TYPE: c.TRIAL_RUN,
            c.TRIAL_ID: trial_id,
            c.TRIAL_INDEX: str(index),
        }
        start = self._start_times(index)  # now, on the driver, not when the writer gets to it
        self.writer.submit(lambda: self._open(trial_id, name, index, tags, start), trial_id)

    def _open(self, trial_id: str, name: str, index: int, tags: dict[str, str], start: int) -> None:
        if trial_id in self.trials:  # a resumed trial: its run exists, reopen it
            self.client.update_run(self.trials[trial_id][0], status="RUNNING")
            return
        run = self.client.create_run(self.experiment_id, start_time=start, run_name=name, tags=tags)
        self.trials[trial_id] = (run.info.run_id, index)

    def _track_end(self, trial_id: str, config: dict, result: dict, error: str | None) -> None:
        if trial_id not in self._started or trial_id in self._ended:
            return
        self._ended.add(trial_id)
        trial = Trial.from_result(config, result, failed=error is not None, ended=True)
        params, metrics = trial.params, trial.metrics
        tags = {k: trial.tags[k] for k in c.NODE_TAGS if k in trial.tags}
        tags[c.OUTCOME] = trial.outcome
        tags.update(self._folds.tags(trial_id, result))
        if error is not None:
            tags[c.ERROR] = error
        for kind in (c.CONFUSION_MATRIX, c.PREDICTED_ACTUAL):  # a classifier's, or a regressor's (closing.py draws)
            numbers = result.get(kind) if error is None else None
            if numbers is not None and len(numbers) <= c.MAX_TAG_CHARS:  # a larger one stays in Tune's results only
                tags[kind] = numbers
        self.writer.submit(lambda: self._write(trial_id, params, metrics, tags, trial.status), trial_id)

    def _write(self, trial_id, params, metrics, tags, status) -> None:
        run_id = self.trials[trial_id][0]
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, v, now, 0) for k, v in metrics.items()],
            params=[Param(k, v) for k, v in params.items()],
            tags=[RunTag(k, v) for k, v in tags.items()],
        )
        self.client.set_terminated(run_id, status=status, end_time=now)

    @property
    def lost(self) -> bool:
        return self.writer is not None and self.writer.lost

    def on_step_begin(self, iteration: int, trials: list, **info) -> None:
        if self.lost:
            raise ConnectionError(f"the MLflow tracking server stopped answering: {self.writer.failures[0]}")

    def on_experiment_end(self, trials, **info) -> None:
        # Trials in flight when the experiment ends: Tune calls no trial-end callback for them and calls them
        # TERMINATED either way. Cut by `--plateau`, they end here; cut by Ctrl-C, Tune saved them as running and
        # reruns them on `--resume`, so `close` leaves their runs KILLED, to be reopened.
        fired = self.stopper is not None and self.stopper.fired
        for trial in trials if fired else ():
            if trial.status == "TERMINATED" and trial.trial_id in self._started and trial.trial_id not in self._ended:
                result = self._last_result.pop(trial.trial_id, None) or dict(trial.last_result or {})
                self._track_end(trial.trial_id, trial.config, result, None)
        self.close()

    def record_missing(self, results) -> int:
        """Track the results Tune holds for trials that MLflow lacks (a resumed search whose tracking was lost)."""
        missing = completed_untracked(results, self._ended)
        for result in missing:
            trial_id = result.metrics[c.TRIAL_ID]
            self._track_start(trial_id, result.config, {c.RECORDED_ON_RESUME: "true"})
            self._track_end(trial_id, result.config, result.metrics, None)
        self.close()
        return len(missing)

    def close(self) -> None:
        """Close runs of trials that never ended (Ctrl-C, a driver error) as KILLED, then flush every write."""
        if self.writer is None:
            return
        for trial_id in self._started - self._ended:
            self._ended.add(trial_id)
            self.writer.submit(lambda t=trial_id: self._kill(t), trial_id)
        self.writer.close()

    def _kill(self, trial_id: str) -> None:
        if trial_id in self.trials:
            self.client.set_terminated(self.trials[trial_id][0], status="KILLED")


def completed_untracked(results, ended: set[str]) -> list:
    """Tune's results of trials that completed (`done`) but whose runs were not ended. A trial whose last report
    came just before a Ctrl-C is not among them: it runs again on `--resume`, so its run stays open."""
    return [
        r
        for r in results
        if (r.metrics or {}).get(c.TRIAL_ID) not in (None, *ended)
        and r.metrics.get("done")
        and c.FOLDS_DONE in r.metrics
        and not r.error
    ]


def _first_error_line(trial) -> str:
    try:  # the local error file is written before callbacks run; storage gets a copy later
        error = Path(trial.error_file).read_text() if trial.error_file else str(trial.get_error() or "")
    except Exception:  # noqa: BLE001 - an unreadable error file still ends the run as failed
        error = ""
    lines = [line for line in str(error).splitlines() if line.strip()]
    return (lines[-1] if lines else "trial failed")[:500]
