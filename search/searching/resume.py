"""Finding a search in MLflow and rebuilding its settings, to resume it after Ctrl-C or a killed driver."""

from __future__ import annotations

from dataclasses import replace

from mlflow.entities import Run

from search.common import contract as c
from search.searching.config import SearchConfig


def resumed_config(parent: Run, current: SearchConfig) -> SearchConfig:
    """The settings the search was started with; where it runs (address, tracking URI) comes from `current`."""
    p = parent.data.params
    return replace(
        current,
        dataset=p[c.DATASET],
        target=p[c.TARGET] or None,
        task=p.get(c.TASK) or c.CLASSIFICATION,
        models=p[c.MODELS].split(","),
        feature_sets=p[c.FEATURE_SETS].split(","),
        num_samples=int(p[c.NUM_SAMPLES]),
        max_concurrent=int(p[c.MAX_CONCURRENT]),
        seed=int(p[c.SEED]),
        cv_folds=int(p[c.CV_FOLDS]),
        test_size=float(p[c.TEST_SIZE]),
        metric=p[c.METRIC],
        scheduler=p[c.SCHEDULER],
        objectives=p.get(c.OBJECTIVES) or None,
        plateau=int(p[c.PLATEAU]) if p.get(c.PLATEAU) else None,
        time_budget=float(p[c.TIME_BUDGET]) if p.get(c.TIME_BUDGET) else None,
        min_delta=float(p.get(c.MIN_DELTA) or current.min_delta),
        categorical=p[c.CATEGORICAL].split(",") if p.get(c.CATEGORICAL) else None,
        drop=p[c.DROP].split(",") if p.get(c.DROP) else None,
        experiment=None,
    )
