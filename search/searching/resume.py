"""Finding a search in MLflow and rebuilding its settings, to resume it after Ctrl-C or a killed driver."""

from __future__ import annotations

from dataclasses import replace

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.searching.config import SearchConfig


def find_search(client: MlflowClient, search_id: str) -> Run:
    """The parent run of search `search_id`, in whichever experiment holds it."""
    return c.find_search(client, search_id)


def resumed_config(parent: Run, current: SearchConfig) -> SearchConfig:
    """The settings the search was started with; where it runs (address, tracking URI) comes from `current`."""
    p = parent.data.params
    return replace(
        current,
        dataset=p["dataset"],
        target=p["target"] or None,
        models=p["models"].split(","),
        feature_sets=p["feature_sets"].split(","),
        num_samples=int(p["num_samples"]),
        max_concurrent=int(p["max_concurrent"]),
        seed=int(p["seed"]),
        cv_folds=int(p["cv_folds"]),
        test_size=float(p["test_size"]),
        metric=p["metric"],
        scheduler=p["scheduler"],
        objectives=p.get("objectives") or None,
        experiment=None,
    )
