"""Run a hyperparameter search: model family x feature set x hyperparameters, on Ray Tune with OptunaSearch,
every trial tracked in MLflow as a child run of the search's parent run.

    python search/run.py                               # Iris, local Ray, sqlite:///mlflow.db
    python search/run.py --dataset digits --num-samples 100 --models svm,mlp
    RAY_ADDRESS=... MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python search/run.py
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from search.common.connect import check_tracking_uri, connect_ray, public_uri
from search.common.ranking import rank_trials
from search.searching.config import SearchConfig, UsageError, parse_args
from trainables.data import DataError, Dataset, Split, load_dataset, split_dataset

if TYPE_CHECKING:
    from search.searching.parent_run import SearchHome

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Fail over to the tracker's own backoff instead of MLflow's minutes of retries, and no "View run at" line (and the
# `runs/get` behind it) each time a trial's run is closed.
MLFLOW_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
               "MLFLOW_HTTP_REQUEST_TIMEOUT": "30", "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}  # fmt: skip


@dataclass
class SearchOutcome:
    """What a finished search left behind."""

    search_id: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    ranked: list[dict]
    failed: int
    stopped: int


def prepare(config: SearchConfig) -> tuple[Dataset, Split]:
    """Load and split the data, and check the settings against it, before anything starts."""
    data = load_dataset(config.dataset, config.target)
    split = split_dataset(data, config.test_size, config.seed)
    smallest = int(split.y_dev.value_counts().min())
    if config.cv_folds > smallest:
        raise UsageError(
            f"--cv-folds {config.cv_folds} is more than the {smallest} rows of the smallest class in the "
            f"development part of {data.name}: lower --cv-folds"
        )
    check_storage(Path(config.storage_path or "ray_results"))
    return data, split


def check_storage(path: Path) -> None:
    """Refuse a Tune storage path that cannot be written, before anything starts."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise UsageError(
            f"--storage-path {path} is not writable ({exc.strerror or exc}): choose a folder you can write"
        ) from None


def run_search(config: SearchConfig) -> SearchOutcome:
    """Run (or, with `config.resume`, resume) one search; raises UsageError, DataError or ConnectionError."""
    from mlflow.tracking import MlflowClient

    from search.common.lineage import lineage_tags
    from search.searching.parent_run import reopen_search, start_search
    from search.searching.resume import find_search, resumed_config
    from search.searching.tracking import TrialTracker
    from search.searching.tuning import build_tuner, restore_tuner

    check_tracking_uri(config.tracking_uri)
    for name, value in MLFLOW_HTTP.items():
        os.environ.setdefault(name, value)
    parent = None
    if config.resume:
        parent = find_search(MlflowClient(config.tracking_uri), config.resume)
        config = resumed_config(parent, config)
    data, split = prepare(config)
    if parent is not None and parent.data.tags.get("dataset_digest") != data.digest:
        raise UsageError(
            f"dataset {config.dataset} has changed since search {config.resume} started "
            f"({data.digest[:19]}… now, {parent.data.tags.get('dataset_digest', '?')[:19]}… then): it cannot resume"
        )
    if config.tracking_uri.startswith(("http://", "https://")):  # logins refused here, before Ray starts
        MlflowClient(config.tracking_uri).search_experiments(max_results=1)
    started_ray = connect_ray(config.address, PROJECT_ROOT)
    import ray

    try:
        client = MlflowClient(config.tracking_uri)
        lineage = {**lineage_tags(PROJECT_ROOT), "dataset": data.name, "dataset_digest": data.digest}
        if parent is None:
            max_concurrent = config.max_concurrent or max(1, int(ray.cluster_resources().get("CPU", 1)))
            home = start_search(client, config, data, split, lineage, max_concurrent)
        else:
            home = reopen_search(client, parent)
        verb = "resuming" if parent else "search"
        print(f"{verb} {home.search_id}: experiment {home.experiment!r}, parent run {home.parent_run_id}, "
              f"tracking {public_uri(config.tracking_uri)}")  # fmt: skip
        trial_tags = {k: lineage[k] for k in ("git_commit", "dataset", "dataset_digest")}
        trial_tags["search_id"] = home.search_id
        tracker = TrialTracker(config.tracking_uri, home.experiment_id, home.parent_run_id, trial_tags, data.classes)
        if parent is None:
            tuner = build_tuner(config, split, home.tune_path, max_concurrent, callbacks=[tracker])
        else:
            tuner = restore_tuner(config, split, home.tune_path, callbacks=[tracker])
        return _run(config, client, home, tuner, tracker)
    finally:
        if started_ray:
            ray.shutdown()


def _run(config: SearchConfig, client, home: SearchHome, tuner, tracker) -> SearchOutcome:
    """Fit the Tuner, then record the outcome on the parent run; the parent is closed whatever happens."""
    from search.searching.parent_run import finish_parent_run
    from search.searching.tuning import trial_rows

    status = "FAILED"
    try:
        try:
            results = tuner.fit()
        except Exception:
            if tracker.writer is not None and tracker.writer.lost:
                raise TrackingLost(config.tracking_uri, home.search_id) from None
            raise
        tracker.record_missing(results)
        if tracker.writer.lost:
            raise TrackingLost(config.tracking_uri, home.search_id)
        rows = trial_rows(results, tracker.trials)
        if len(rows) < config.num_samples or any(r["status"] == "UNFINISHED" for r in rows):
            raise KeyboardInterrupt  # Tune caught Ctrl-C, saved its state and returned early
        ranked = rank_trials([r for r in rows if r["status"] == "FINISHED"], config.metric)
        failed = sum(r["status"] != "FINISHED" for r in rows)
        stopped = sum(r["status"] == "FINISHED" and r["folds_done"] < config.cv_folds for r in rows)
        counts = {"trials_finished": len(rows) - failed - stopped, "trials_stopped": stopped, "trials_failed": failed}
        finish_parent_run(client, home.parent_run_id, ranked, counts)
        status = "FINISHED" if ranked else "FAILED"
        return SearchOutcome(
            home.search_id, home.experiment, home.experiment_id, home.parent_run_id, ranked, failed, stopped
        )
    except KeyboardInterrupt:
        status = "KILLED"
        raise SearchInterrupted(home.search_id) from None
    finally:
        tracker.close()
        if not tracker.writer.lost:  # with the server gone, the parent stays RUNNING until --resume
            client.set_terminated(home.parent_run_id, status=status)


class TrackingLost(ConnectionError):
    """The tracking server went away mid-search and did not come back in time."""

    def __init__(self, uri: str, search_id: str):
        super().__init__(
            f"MLflow tracking server {public_uri(uri)} stopped answering, so search {search_id} stopped; Tune kept "
            f"every result: start the server again and run python search/run.py --resume {search_id}"
        )


class SearchInterrupted(Exception):
    """The search stopped before its last trial; `--resume <search_id>` continues it."""

    def __init__(self, search_id: str):
        super().__init__(
            f"search {search_id} was interrupted: continue it with python search/run.py --resume {search_id}"
        )
        self.search_id = search_id


def print_summary(outcome: SearchOutcome, top: int = 5) -> None:
    """The best trials as a table, and the search id to release or report."""
    print(f"\nbest trials of search {outcome.search_id} ({outcome.stopped} stopped early, {outcome.failed} failed):")
    print(f"{'trial':>5}  {'model':<20} {'feature_set':<11} {'val_accuracy':>12} {'val_f1':>7} {'fit_s':>7}  run_id")
    for row in outcome.ranked[:top]:
        print(
            f"{row['trial_index']:>5}  {row['model']:<20} {row['feature_set']:<11} {row['val_accuracy']:>12.4f} "
            f"{row['val_f1']:>7.4f} {row['fit_time_s']:>7.3f}  {row['run_id']}"
        )
    print(f"\nsearch_id: {outcome.search_id}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    from mlflow.exceptions import MlflowException

    try:
        config = parse_args(argv)
        outcome = run_search(config)
    except (UsageError, DataError, ConnectionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except MlflowException as exc:
        hint = " (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)" if "401" in str(exc) else ""
        print(f"error: MLflow refused the request{hint}: {str(exc).strip().splitlines()[0][:300]}", file=sys.stderr)
        return 2
    except SearchInterrupted as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 130
    print_summary(outcome)
    if not outcome.ranked:
        print("error: no trial finished; see the failed trials' `error` tag in MLflow", file=sys.stderr)
        return 1
    if config.report:  # the report's own command line, with its own one-line errors
        from search import report

        where = ["--tracking-uri", config.tracking_uri, "--experiment", outcome.experiment]
        return report.main([*where, "--search-id", outcome.search_id])
    return 0


if __name__ == "__main__":
    sys.exit(main())
