"""The search's parent run in MLflow: start it (settings as params, lineage as tags), reopen it, finish it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.common import mlflow_records as mr
from search.common.connect import held_interrupts
from search.searching.config import SearchConfig
from trainables.data import Dataset, Split, recorded_source


def search_params(config: SearchConfig, split: Split, max_concurrent: int) -> dict:
    """The settings recorded as the parent run's params."""
    return {
        c.DATASET: config.dataset,
        c.TARGET: config.target or "",
        c.TASK: config.task,
        c.MODELS: ",".join(config.models),
        c.FEATURE_SETS: ",".join(config.feature_sets),
        c.NUM_SAMPLES: config.num_samples,
        c.MAX_CONCURRENT: max_concurrent,
        c.SEED: config.seed,
        c.CV_FOLDS: config.cv_folds,
        c.TEST_SIZE: config.test_size,
        c.SPLIT_SEED: config.seed,
        c.METRIC: config.metric,
        c.SCHEDULER: config.scheduler,
        c.OBJECTIVES: config.objectives or "",
        c.POINTS_TO_EVALUATE: len(config.points_to_evaluate or []),
        c.N_DEV_ROWS: len(split.y_dev),
        c.N_TEST_ROWS: len(split.y_test),
        c.WARM_START: config.warm_start,
        c.PLATEAU: config.plateau or "",
        c.TIME_BUDGET: config.time_budget or "",
        c.MIN_DELTA: config.min_delta,
        c.CATEGORICAL: ",".join(config.categorical or []),
        c.DROP: ",".join(config.drop or []),
    }


@dataclass
class SearchHome:
    """Where a search lives: its id, its MLflow experiment and parent run, its Tune folder."""

    search_id: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    tune_path: Path


def start_search(
    client, config: SearchConfig, data: Dataset, split: Split, lineage: dict, max_concurrent: int, tags: dict
):
    """A new search: its id, its parent run (settings as params, lineage and `tags` as tags) and its Tune folder."""
    search_id = uuid.uuid4().hex[:12]
    experiment = config.experiment or c.experiment_name(data.name, data.task)
    tune_path = Path(config.storage_path or "ray_results").resolve() / f"search-{search_id}"
    tags = {**lineage, **tags, c.DATASET_SOURCE: config.dataset, c.TUNE_PATH: str(tune_path)}
    roles = data.roles.to_json()
    if len(roles) <= c.MAX_TAG_CHARS:  # the report, the card and a resumed search read them; wider tables: the file
        tags[c.COLUMN_ROLES] = roles
    tags |= mr.source_tags("search/run.py", lineage.get(c.GIT_COMMIT, "unknown"))  # the UI's Source column
    params = search_params(config, split, max_concurrent)
    experiment_id, parent_id = start_parent_run(client, experiment, search_id, tags, params)
    try:
        client.log_dict(
            parent_id, {c.SEARCH_ID: search_id, "settings": config.as_dict(), **lineage}, "search_config.json"
        )
        client.log_text(parent_id, roles, c.COLUMN_ROLES_FILE)
        # The UI's Dataset column and run page: the development and test parts, with their digests.
        source = recorded_source(config.dataset)
        parts = [mr.data_part(split.X_dev, split.y_dev, f"{data.name}-development", "training", source)]
        parts.append(mr.data_part(split.X_test, split.y_test, f"{data.name}-test", "testing", source))
        mr.log_data(client, parent_id, parts)
    except BaseException:  # Ctrl-C or a failed write: no half-made search is left behind
        client.delete_run(parent_id)
        raise
    return SearchHome(search_id, experiment, experiment_id, parent_id, tune_path)


def reopen_search(client, parent) -> SearchHome:
    """An interrupted search's home, its parent run set RUNNING again."""
    client.update_run(parent.info.run_id, status="RUNNING")
    client.set_tag(parent.info.run_id, c.RESUMED, "true")
    experiment = client.get_experiment(parent.info.experiment_id).name
    tune_path = Path(parent.data.tags[c.TUNE_PATH])
    return SearchHome(
        parent.data.tags[c.SEARCH_ID], experiment, parent.info.experiment_id, parent.info.run_id, tune_path
    )


def start_parent_run(
    client: MlflowClient, experiment: str, search_id: str, tags: dict[str, str], params: dict[str, Any]
) -> tuple[str, str]:
    """Create (or reuse) the experiment and the search's parent run; returns (experiment_id, run_id)."""
    found = client.get_experiment_by_name(experiment)
    if found is not None:
        experiment_id = found.experiment_id
    else:
        try:
            experiment_id = client.create_experiment(experiment, tags={mr.EXPERIMENT_KIND: mr.TRAINING_KIND})
        except MlflowException as exc:  # another driver created it a moment ago
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            experiment_id = client.get_experiment_by_name(experiment).experiment_id
    with held_interrupts() as received:  # a run made, then cut before its id came back, would stay RUNNING
        run = client.create_run(
            experiment_id,
            run_name=c.search_run_name(search_id),
            tags={**tags, c.SEARCH_ID: search_id, c.RUN_TYPE: c.SEARCH_RUN},
        )
    try:
        if received:
            raise KeyboardInterrupt
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
    except BaseException:  # Ctrl-C or a failed write: no half-made search is left behind
        client.delete_run(run.info.run_id)
        raise
    return experiment_id, run.info.run_id


def finish_parent_run(client, parent_id: str, ranked: list[dict], counts: dict[str, int], stop_reason: str) -> None:
    """The search's end: its best trial's scores, its trial counts, why it stopped."""
    client.set_tag(parent_id, c.STOP_REASON, stop_reason)
    metrics = dict(counts)
    if ranked:
        best = ranked[0]
        if c.VAL_RMSE in best:  # a regression search
            metrics |= {c.BEST_VAL_RMSE: best[c.VAL_RMSE], c.BEST_VAL_R2: best[c.VAL_R2]}
        else:
            metrics |= {c.BEST_VAL_ACCURACY: best[c.VAL_ACCURACY], c.BEST_VAL_F1: best[c.VAL_F1]}
        client.set_tag(parent_id, c.BEST_TRIAL_RUN_ID, ranked[0]["run_id"])
    client.log_batch(parent_id, metrics=[Metric(k, float(v), 0, 0) for k, v in metrics.items()])
