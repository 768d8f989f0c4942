"""The Tune side of a search: the Tuner with OptunaSearch over the conditional space, and its results as rows."""

from __future__ import annotations

import os
from pathlib import Path

from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

from search.config import SearchConfig
from search.tracking import TRIAL_METRICS
from trainables.data import Split
from trainables.space import SearchSpace
from trainables.trainable import train_trial

REPORTED = ["val_accuracy", "val_f1", "fit_time_s"]


def trial_name(trial) -> str:
    """Names trials `0007-svm-basic`: the order in which the searcher proposed them, then what they try."""
    config = trial.config
    return f"{config.get('trial_index', 0):04d}-{config.get('model')}-{config.get('feature_set')}"


def trial_dirname(trial) -> str:
    """A short folder name per trial (Tune's default spells out every hyperparameter)."""
    return f"{trial.trial_id}"


def build_tuner(config: SearchConfig, split: Split, search_id: str, max_concurrent: int, callbacks: list) -> tune.Tuner:
    """A Tuner whose trials cross-validate Pipelines on the development part, shipped once to the object store.

    With `--scheduler asha` each fold is an iteration and ASHA stops configurations that trail after one or two
    folds; with `fifo` every trial runs every fold and reports once.
    """
    space = SearchSpace(config.models, config.feature_sets, config.seed, config.cv_folds)
    searcher = OptunaSearch(space=space, metric=config.metric, mode="max", seed=config.seed)
    asha = config.scheduler == "asha"
    trainable = tune.with_parameters(train_trial, X=split.X_dev, y=split.y_dev, report_folds=asha)
    scheduler = None
    if asha:
        scheduler = ASHAScheduler(
            time_attr="training_iteration", metric=config.metric, mode="max", max_t=config.cv_folds, grace_period=1
        )
    reporter = tune.CLIReporter(
        parameter_columns=["model", "feature_set"],
        metric_columns=REPORTED,
        metric=config.metric,
        mode="max",
        sort_by_metric=True,
        max_progress_rows=8,
        max_report_frequency=15,
    )
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the classic reporter honours the columns chosen above
    storage = Path(config.storage_path or "ray_results").resolve()
    return tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=max_concurrent),
            scheduler=scheduler,
            num_samples=config.num_samples,
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=f"search-{search_id}",
            storage_path=str(storage),
            callbacks=callbacks,
            progress_reporter=reporter,
            failure_config=tune.FailureConfig(max_failures=2),
            verbose=1,
        ),
    )


def trial_rows(results: tune.ResultGrid, trials: dict[str, tuple[str, int]]) -> list[dict]:
    """One row per trial: status, its MLflow run id and order (from the tracker), params and metrics."""
    rows = []
    for result in results:
        config, metrics = result.config or {}, result.metrics or {}
        trial_id = metrics.get("trial_id") or Path(result.path or "").name
        run_id, index = trials.get(trial_id, ("", -1))
        row = {
            "trial_id": trial_id,
            "run_id": run_id,
            "trial_index": index,
            "status": "FAILED" if result.error else "FINISHED",
            "folds_done": metrics.get("folds_done", 0),
            "model": config.get("model"),
            "feature_set": config.get("feature_set"),
            "cv_folds": config.get("cv_folds"),
        }
        row.update({k: metrics[k] for k in TRIAL_METRICS if k in metrics})
        rows.append(row)
    return rows
