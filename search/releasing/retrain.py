"""Redo a trial for release: rebuild its split from recorded lineage, refit on the development part, score on test;
`verify` rebuilds an alias holder from its model version's lineage and compares predictions."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, balanced_accuracy_score, classification_report, confusion_matrix, f1_score
from sklearn.pipeline import Pipeline

from search.common import contract as c
from search.common.errors import CommandError, UsageError
from trainables.data import BUNDLED, Dataset, Split, has_digest, load_dataset, split_dataset, table_path
from trainables.scoring import ranking_scores, regression_scores
from trainables.space import config_from_params
from trainables.trainable import pipeline_for


@dataclass(frozen=True)
class Lineage:
    """Everything needed to redo a trial: data source and digest, split, the trial's params (config and seed)."""

    dataset_source: str
    target: str | None
    test_size: float
    split_seed: int
    dataset_digest: str
    params: dict[str, str]
    categorical: str = ""  # --categorical and --drop of the search, comma-separated: the roles are inferred alike
    drop: str = ""
    task: str = c.CLASSIFICATION  # what the target was read as

    def as_tags(self) -> dict[str, str]:
        """The lineage as string tags (the trial params as one JSON tag `config`)."""
        tags = {k: str(v) for k, v in asdict(self).items() if k not in ("params", "categorical", "drop", c.TASK)}
        tags[c.CATEGORICAL], tags[c.DROP], tags[c.TASK] = self.categorical, self.drop, self.task
        tags[c.TARGET] = self.target or ""
        tags[c.CONFIG] = json.dumps(self.params, sort_keys=True)
        return tags

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Lineage:
        """The lineage recorded on a model version by `as_tags`."""
        try:
            return cls(
                tags[c.DATASET_SOURCE],
                tags.get(c.TARGET) or None,
                float(tags[c.TEST_SIZE]),
                int(tags[c.SPLIT_SEED]),
                tags[c.DATASET_DIGEST],
                json.loads(tags[c.CONFIG]),
                tags.get(c.CATEGORICAL, ""),
                tags.get(c.DROP, ""),
                tags.get(c.TASK) or c.CLASSIFICATION,
            )
        except (KeyError, ValueError) as exc:
            missing = f"the model version lacks its lineage tags ({exc})"
            raise CommandError(f"{missing}: it was not made by release.py") from None


def lineage_of(search: Run, trial: Run) -> Lineage:
    """Lineage from the search's parent run (data, split) and the trial run (configuration, seed)."""
    p, tags = search.data.params, search.data.tags
    try:
        target = p.get(c.TARGET)
        return Lineage(
            p[c.DATASET],
            None if target in (None, "", "None") else target,
            float(p[c.TEST_SIZE]),
            int(p[c.SPLIT_SEED]),
            trial.data.tags.get(c.DATASET_DIGEST) or tags[c.DATASET_DIGEST],
            dict(trial.data.params),
            p.get(c.CATEGORICAL, ""),
            p.get(c.DROP, ""),
            p.get(c.TASK) or c.CLASSIFICATION,
        )
    except (KeyError, ValueError) as exc:
        missing = f"search run {search.info.run_id} lacks a split param or tag ({exc})"
        raise CommandError(f"{missing}: see docs/tracking.md") from None


def reload(lineage: Lineage, copy: str | None = None) -> Dataset:
    """The recorded dataset, read again as the search read it (from `copy`, this machine's copy, when given)."""
    try:
        overrides = [names.split(",") if names else None for names in (lineage.categorical, lineage.drop)]
        return load_dataset(copy or lineage.dataset_source, lineage.target, *overrides, task=lineage.task)
    except UsageError as exc:
        if copy:
            raise UsageError(f"--dataset {copy}: {exc}") from None
        raise CommandError(f"cannot reload the recorded dataset: {exc}") from None


def same_data(lineage: Lineage, digest: str) -> bool:
    """Whether `digest` (another version's `dataset_digest`) names the data of `lineage`, digested either way
    (`trainables.data.has_digest`)."""
    if digest == lineage.dataset_digest:
        return True
    try:
        return has_digest(reload(lineage), digest)
    except (CommandError, UsageError):
        return False


def rebuild_split(lineage: Lineage, copy: str | None = None) -> Split:
    """The same development/test split, after checking the data still has the recorded digest. `copy`: this
    machine's copy of the search's table, when the search read it elsewhere (`release.py --dataset`)."""
    recorded = lineage.dataset_source
    if copy and recorded in BUNDLED:
        raise UsageError(f"--dataset applies to a search of a table file; this search read the bundled {recorded}")
    if not copy and recorded not in BUNDLED and not table_path(recorded).exists():
        raise UsageError(
            f"the search's table {recorded} is not on this machine (a search in a container reads the container's "
            "files): give this machine's copy with --dataset PATH"
        )
    data = reload(lineage, copy)
    if not has_digest(data, lineage.dataset_digest):
        digests = f"digest {data.digest[:19]}… differs from the recorded {lineage.dataset_digest[:19]}…"
        if copy:
            raise UsageError(f"--dataset {copy} is not the search's table: {digests}")
        raise CommandError(f"dataset {recorded} changed since the search: {digests}")
    return split_dataset(data, lineage.test_size, lineage.split_seed)


def fit(lineage: Lineage, split: Split) -> Pipeline:
    """The trial's Pipeline with its recorded seed, fitted on the whole development part."""
    try:
        config = config_from_params(lineage.params)
        pipeline = pipeline_for(config, split.roles)
    except (KeyError, ValueError, TypeError) as exc:
        raise CommandError(f"the recorded configuration cannot be rebuilt ({exc}): {lineage.params}") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return pipeline.fit(split.X_dev, split.y_dev)


@dataclass(frozen=True)
class Scores:
    """Test-part scores of a fitted Pipeline."""

    metrics: dict[str, float]
    report: dict[str, Any]
    matrix: list[list[int]]
    classes: list
    predicted: tuple = ()  # the predicted label of each test row, in order (the alias gate compares them row by row)


def score(pipeline: Pipeline, split: Split) -> Scores:
    """The test part's scores (per class too, with the confusion matrix); a regressor's with the target's spread."""
    predicted = pipeline.predict(split.X_test)
    if split.task == c.REGRESSION:
        found = regression_scores(split.y_test.to_numpy(), predicted)
        metrics = {c.test_metric_for(k): v for k, v in found.items()}
        metrics[c.TARGET_STD] = float(np.std(split.y_test.to_numpy()))
        return Scores(metrics, {}, [], [], tuple(float(p) for p in predicted))
    classes = sorted(split.y_test.unique().tolist())
    known = np.asarray(pipeline.classes_)
    # The metrics on the labels' positions: each metric then sorts numbers, not the test part's texts again.
    space = pd.Index(sorted({*known.tolist(), *classes}))
    truth, guess, labels = space.get_indexer(split.y_test), space.get_indexer(predicted), space.get_indexer(classes)
    values = (
        accuracy_score(truth, guess),
        f1_score(truth, guess, average="macro"),
        balanced_accuracy_score(truth, guess),
    )
    metrics = {k: float(v) for k, v in zip(c.TEST_SCORES, values, strict=False)}
    ranking, _ = ranking_scores(pipeline, split.X_test, np.searchsorted(known, split.y_test.to_numpy()), len(known))
    metrics.update({c.test_metric_for(k): v for k, v in ranking.items()})
    names = [str(cls) for cls in classes]
    report = classification_report(truth, guess, labels=labels, target_names=names, output_dict=True, zero_division=0)
    for cls in classes:
        metrics[f"{c.TEST_F1}.{metric_safe(cls)}"] = float(report[str(cls)]["f1-score"])
    matrix = confusion_matrix(truth, guess, labels=labels).tolist()
    return Scores(metrics, report, matrix, classes, tuple(predicted))


def metric_safe(label: Any) -> str:
    """A class label as part of an MLflow metric name: characters MLflow refuses there become `_`."""
    return re.sub(r"[^A-Za-z0-9_\-. :/]", "_", str(label))


def verify(client: MlflowClient, model_name: str, alias: str, copy: str | None = None) -> tuple[bool, str]:
    """Rebuild the alias holder from its version's lineage (`copy`: as `rebuild_split`); (identical?, verdict line).
    A table that is not here, or a wrong copy, is bad input rather than a verdict."""
    import mlflow.sklearn

    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        raise CommandError(f"model {model_name!r} has no version with alias {alias!r}: nothing to verify") from None
    lineage = Lineage.from_tags(version.tags)
    try:
        split = rebuild_split(lineage, copy)
    except UsageError:
        raise
    except CommandError as exc:
        return False, f"verify FAILED: {model_name} v{version.version} (@{alias}): {exc}"
    rebuilt = fit(lineage, split).predict(split.X_test)
    registered = mlflow.sklearn.load_model(f"models:/{model_name}/{version.version}").predict(split.X_test)
    differ = int(np.sum(np.asarray(rebuilt) != np.asarray(registered)))
    where = f"{model_name} v{version.version} (@{alias}) on {len(split.y_test)} test rows"
    if differ:
        return False, f"verify FAILED: {where}: {differ} prediction(s) of the rebuilt model differ"
    return True, f"verify OK: {where}: rebuilt from its lineage, predictions identical"
