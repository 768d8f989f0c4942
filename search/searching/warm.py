"""Searches learn from searches: what a new search takes from the earlier searches of its experiment.

Same fingerprint (data, split, folds, definitions): their completed trials enter the new study before the first
proposal, and the best of them runs first, so the new search's best is never below what it learned from (BENCHMARKS.md,
"Warm start and plateau"). Only the same columns and labels: the best few configurations of the latest such search
run first.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna

from search.common import contract as c
from search.common.errors import UsageError
from search.common.lookup import find_search, search_trials
from search.common.trials import Trial, completed, number, rank_trials
from search.searching.config import SearchConfig
from trainables.space import SearchSpace

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient

    from trainables.data import Dataset

AUTO, OFF = "auto", "off"
RELATED_POINTS = 5  # the best configurations of a related search run first
DEFINITIONS = ("models.py", "features.py", "prepare.py")  # in trainables/: families, feature sets, preparation


def definitions_digest() -> str:
    """sha256 of the model-family and feature-set definitions (their source)."""
    root = Path(__file__).resolve().parents[2] / "trainables"
    text = b"".join((root / name).read_bytes() for name in DEFINITIONS)
    return "sha256:" + hashlib.sha256(text).hexdigest()


def _digest(payload: Any) -> str:
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(data: Dataset, config: SearchConfig) -> str:
    """What makes two searches' scores comparable: same data, same split, same folds, same definitions."""
    return _digest(
        {
            c.DATASET_DIGEST: data.digest,
            c.TASK: data.task,
            c.SPLIT_SEED: config.seed,
            c.TEST_SIZE: float(config.test_size),
            c.CV_FOLDS: config.cv_folds,
            "definitions": definitions_digest(),
            c.COLUMN_ROLES: data.roles.to_json(),
        }
    )


def schema_digest(data: Dataset) -> str:
    """The data's columns, their roles and labels: two searches on related data (another split, more rows) share it."""
    roles = [(col.name, col.role) for col in data.roles.columns]
    return _digest(
        {
            "columns": [str(x) for x in data.X.columns],
            "labels": [str(x) for x in data.classes],
            "roles": roles,
            c.TASK: data.task,
        }  # fmt: skip
    )


@dataclass
class WarmStart:
    """What a new search takes from earlier ones: finished trials for its study, or configurations to run first."""

    fingerprint: str
    schema: str
    sources: list[str] = field(default_factory=list)  # search ids whose trials the study holds
    trials: list[optuna.trial.FrozenTrial] = field(default_factory=list)
    best: str = ""  # `<search id>/<trial index>` of the best earlier trial, run first
    related: str = ""  # the search whose best configurations are enqueued
    points: list[dict[str, Any]] = field(default_factory=list)  # those configurations, in the searcher's names
    why_cold: str = ""  # said when a warm start was asked for and none happened

    def tags(self) -> dict[str, str]:
        """The parent run's tags."""
        tags = {c.SEARCH_FINGERPRINT: self.fingerprint, c.SCHEMA_DIGEST: self.schema}
        if self.trials:
            tags |= {c.WARM_START_FROM: ",".join(self.sources), c.WARM_START_TRIALS: str(len(self.trials))}
        if self.best:
            tags[c.WARM_START_BEST] = self.best
        if self.related:
            tags |= {c.ENQUEUED_FROM: self.related, c.ENQUEUED_TRIALS: str(len(self.points))}
        return tags

    def note(self) -> str:
        """One line for the summary (empty for a cold search nobody asked to warm)."""
        if self.trials:
            first = f"; their best (trial {self.best}) ran first" if self.best else ""
            return (
                f"warm start: the sampler knew {len(self.trials)} completed trials of {len(self.sources)} earlier "
                f"search(es) with the same fingerprint ({', '.join(self.sources)}) before its first proposal{first}"
            )
        if self.points:
            return (
                f"related search {self.related} (same columns and labels, another split or data): its best "
                f"{len(self.points)} configurations ran first, on this split"
            )
        return self.why_cold


def plan(client: MlflowClient, config: SearchConfig, data: Dataset, experiment: str) -> WarmStart:
    """What the new search (not yet started) takes from the earlier searches of `experiment`."""
    warm = WarmStart(fingerprint(data, config), schema_digest(data))
    if config.warm_start == OFF:
        return warm
    space = SearchSpace(config.models, config.feature_sets, config.seed, config.cv_folds, config.task, data.roles.text)
    if config.warm_start != AUTO:
        named = find_search(client, config.warm_start)
        tags = named.data.tags
        if tags.get(c.SEARCH_FINGERPRINT) == warm.fingerprint:
            _learn(client, config, space, warm, [named])
        elif tags.get(c.SCHEMA_DIGEST) == warm.schema:
            _enqueue(client, config, space, warm, named)
        else:
            raise UsageError(
                f"--warm-start {config.warm_start}: that search ran on other columns or labels, so its scores say "
                f"nothing here: give a search of this data, auto or off"
            )
        if not warm.trials and not warm.points:
            warm.why_cold = f"warm start: search {config.warm_start} has no completed trial this search can use"
        return warm
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return warm
    query = f"tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}' and tags.{c.SEARCH_FINGERPRINT} = '{warm.fingerprint}'"
    same = client.search_runs([found.experiment_id], query, order_by=["attributes.start_time ASC"], max_results=1000)
    if same:
        _learn(client, config, space, warm, same)
        if not warm.trials:
            warm.why_cold = "warm start: the earlier searches of this fingerprint hold no trial of these families"
        return warm
    query = f"tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}' and tags.{c.SCHEMA_DIGEST} = '{warm.schema}'"
    for run in client.search_runs([found.experiment_id], query, order_by=["attributes.start_time DESC"]):
        if _enqueue(client, config, space, warm, run):
            break
    return warm


def _values(config: SearchConfig, trial: Trial) -> list[float] | None:
    """The trial's value per objective of this search, None when one is missing."""
    if config.objectives:
        from search.common.pareto import parse_objectives

        names = [o.name for o in parse_objectives(config.objectives)]
    else:
        names = [config.metric]
    values = [number(trial.metrics.get(name)) for name in names]
    return None if any(v != v for v in values) else values  # NaN: missing


def finished_trials(
    config: SearchConfig, space: SearchSpace, trials: list[Trial], search_id: str
) -> list[optuna.trial.FrozenTrial]:
    """The completed `trials` that fit `space`, as finished Optuna trials of this search's objectives, in order."""
    frozen = []
    for trial in sorted(trials, key=lambda t: (t.index is None, t.index or 0)):
        values = _values(config, trial)
        if not completed(trial) or values is None:
            continue
        try:
            fixed = space.replay(trial.params)
        except ValueError:  # a family or feature set this search does not use, or a changed range
            continue
        attrs = {c.WARM_START_FROM: search_id, c.TRIAL_INDEX: trial.index}
        frozen.append(
            optuna.trial.create_trial(
                params=fixed.params, distributions=fixed.distributions, values=values, user_attrs=attrs
            )
        )
    return frozen


def _fitting(config: SearchConfig, space: SearchSpace, trials: list[Trial]) -> Iterator[tuple[Trial, dict[str, Any]]]:
    """The completed `trials` that fit `space`, best first, each with its configuration in the searcher's names."""
    for trial in rank_trials(trials, config.metric):
        try:
            yield trial, space.point(trial.params)
        except ValueError:
            continue


def best_points(config: SearchConfig, space: SearchSpace, trials: list[Trial]) -> list[dict[str, Any]]:
    """The best few distinct configurations of `trials` that fit `space`, in the searcher's names."""
    points, seen = [], set()
    for _, point in _fitting(config, space, trials):
        key = json.dumps(point, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            points.append(point)
        if len(points) == min(RELATED_POINTS, config.num_samples):
            break
    return points


def incumbent(config: SearchConfig, space: SearchSpace, trials: list[Trial]) -> tuple[Trial, dict[str, Any]] | None:
    """The best of `trials` that fits `space`, and its configuration; None with several objectives (no one best)."""
    return None if config.objectives else next(_fitting(config, space, trials), None)


def _learn(client, config: SearchConfig, space: SearchSpace, warm: WarmStart, searches: list[Run]) -> None:
    learned: dict[str, tuple[Trial, str]] = {}  # run id -> (trial, its search's id)
    for search in searches:
        search_id = search.data.tags[c.SEARCH_ID]
        earlier = search_trials(client, search.info.experiment_id, search_id, finished=True)
        taken = finished_trials(config, space, earlier, search_id)
        if taken:
            warm.trials += taken
            warm.sources.append(search_id)
            learned |= {t.run_id: (t, search_id) for t in earlier}
    best = incumbent(config, space, [t for t, _ in learned.values()]) if config.num_samples > 1 else None
    if best is not None:
        trial, point = best
        warm.best, warm.points = f"{learned[trial.run_id][1]}/{trial.index}", [point]


def _enqueue(client, config: SearchConfig, space: SearchSpace, warm: WarmStart, search: Run) -> bool:
    """Take the best few configurations of `search` that fit this space; whether there were any."""
    search_id = search.data.tags[c.SEARCH_ID]
    warm.points = best_points(config, space, search_trials(client, search.info.experiment_id, search_id, True))
    warm.related = search_id if warm.points else ""
    return bool(warm.points)
