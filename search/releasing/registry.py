"""The model registry side of a release: log the Pipeline, find or register its version, the alias gate, rollback.

A rerun finds its version by the tags `search_id` + `source_run_id`. The alias moves only to a version that beats
the holder on the same test part by more than that part can tell apart (`paired.py`), or with --force, and never
past the serving budget; the former holder keeps the `previous` alias.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import cloudpickle
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from pandas.api.types import is_integer_dtype
from sklearn.pipeline import Pipeline

from search.common import contract as c
from search.common.errors import CommandError
from search.releasing.paired import Paired
from trainables import prepare

REQUIREMENTS = ("mlflow", "scikit-learn", "cloudpickle", "numpy", "pandas", "scipy")
SAME_TEST_PART = (c.DATASET_DIGEST, c.SPLIT_SEED, c.TEST_SIZE)


def pinned_requirements() -> list[str]:
    """`package==version` for what loading the model needs, from the installed versions."""
    return [f"{name}=={metadata.version(name)}" for name in REQUIREMENTS]


def log_pipeline(pipeline: Pipeline, example: pd.DataFrame, name: str = c.LOGGED_MODEL, gaps: bool = False) -> str:
    """Log the whole Pipeline to the active run (cloudpickle: skops refuses several of our estimators); its URI.
    `gaps`: the Pipeline prepares raw rows, so every input column may be missing (and integers come as doubles)."""
    import mlflow.sklearn

    logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)  # the cloudpickle caution, said once in the docs
    if gaps:  # whole numbers as doubles: a served row may leave one out (MLflow's hint about integer columns)
        example = example.astype({col: "float64" for col in example.columns if is_integer_dtype(example[col])})
    cloudpickle.register_pickle_by_value(prepare)  # the preparation's own steps travel inside the model file
    try:
        info = mlflow.sklearn.log_model(
            pipeline,
            name=name,
            input_example=example,
            signature=signature(pipeline, example, gaps),
            pip_requirements=pinned_requirements(),
            serialization_format="cloudpickle",
        )
    finally:
        cloudpickle.unregister_pickle_by_value(prepare)
    return info.model_uri


def signature(pipeline: Pipeline, example: pd.DataFrame, gaps: bool):
    """The model's signature: the columns' types as MLflow infers them from `example`; with `gaps`, each column
    optional and whole numbers as doubles, so that a served row may leave any value out."""
    from mlflow.models import infer_signature
    from mlflow.types.schema import ColSpec, Schema

    inferred = infer_signature(example, pipeline.predict(example))
    if not gaps:
        return inferred
    widened = {"long": "double", "integer": "double"}
    columns = [ColSpec(widened.get(str(col.type), col.type), col.name, required=False) for col in inferred.inputs]
    inferred.inputs = Schema(columns)
    return inferred


def find_version(client: MlflowClient, name: str, search_id: str, source_run_id: str) -> ModelVersion | None:
    """The version already registered from this search's trial, if any."""
    query = f"name = '{name}' and tags.search_id = '{search_id}' and tags.source_run_id = '{source_run_id}'"
    found = client.search_model_versions(query)
    return min(found, key=lambda v: int(v.version)) if found else None


def next_version(client: MlflowClient, name: str) -> int:
    """The number the next registered version will most likely get."""
    found = client.search_model_versions(f"name = '{name}'")
    return max((int(v.version) for v in found), default=0) + 1


def register(client: MlflowClient, name: str, model_uri: str, run_id: str, tags: dict[str, str]) -> ModelVersion:
    """Register the logged model as a new version of `name` (created when missing), tags set at creation."""
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Best trial of a hyperparameter search, retrained.")
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    return client.create_model_version(name, model_uri, run_id=run_id, tags=tags, model_id=model_id)


def holder(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    """The version holding `alias`, or None."""
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


@dataclass(frozen=True)
class Decision:
    """Whether the alias moves to the new version, and why (with the paired comparison, when one was made)."""

    move: bool
    verdict: str  # one of contract.PROMOTION_VERDICTS, or contract.HOLDS
    reason: str
    paired: Paired | None = None


def lower_is_better(metric: str) -> bool:
    """A metric's direction, from the contract (`contract.MINIMISED`); a test metric has its trial metric's."""
    return metric in c.MINIMISED or f"val_{metric.removeprefix('test_')}" in c.MINIMISED


def beats(score: float, theirs: float, metric: str) -> bool:
    """Whether `score` is better than `theirs` in `metric`'s direction."""
    return score < theirs if lower_is_better(metric) else score > theirs


def gate(
    client: MlflowClient,
    new: ModelVersion,
    score: float,
    metric: str,
    current: ModelVersion | None,
    force: bool,
    over_budget: str | None = None,
    rows: Callable[[ModelVersion], Paired] | None = None,
    same_data: Callable[[str], bool] | None = None,
) -> Decision:
    """Whether the alias moves, and why: see the module's docstring. `rows(holder)` compares the two row by row;
    `same_data(digest)` says whether a holder's other dataset digest names the same data."""
    if over_budget:
        stays = f"v{current.version} keeps it" if current is not None else "no version gets it"
        return Decision(False, c.OVER_BUDGET, f"measured at release, {over_budget}: {stays}")
    if current is None:
        return Decision(True, c.PROMOTED, "no version held the alias")
    if current.version == new.version:
        return Decision(False, c.HOLDS, f"v{new.version} already holds the alias")
    same = all(current.tags.get(k) == new.tags.get(k) for k in SAME_TEST_PART)
    if not same and same_data is not None and all(current.tags.get(k) == new.tags.get(k) for k in SAME_TEST_PART[1:]):
        same = same_data(current.tags.get(c.DATASET_DIGEST, ""))  # the same data digested another way (retrain.py)
    paired = None
    if new.tags.get(c.ROLLED_BACK) == "true":
        why = f"v{new.version} was rolled back from the alias"
    elif not same:
        why = f"v{current.version} was scored on another test part (dataset digest or split differ): not comparable"
    else:
        theirs = _holder_score(client, current, metric)
        if theirs is None or not beats(score, theirs, metric):
            shown = "unknown" if theirs is None else f"{theirs:.4f}"
            why = f"{metric} {score:.4f} does not beat v{current.version}'s {shown} on the same test part"
        else:
            versus = f"{metric} {score:.4f} vs v{current.version}'s {theirs:.4f}"
            try:
                paired = rows(current) if rows is not None else None
            except Exception as exc:  # noqa: BLE001 - unpickling an older model can fail in any way
                why = f"{versus}, but v{current.version} could not be loaded to compare row by row ({exc})"
            else:
                if paired is None:
                    why = f"{versus}, but no row-by-row comparison was made"
                else:
                    said = paired.describe(f"v{new.version}", f"v{current.version}")
                    if paired.new_is_better:
                        return Decision(True, c.PROMOTED, f"{versus}, told apart on the same rows: {said}", paired)
                    why = f"{versus}, but the test part cannot tell them apart: {said}"
    if force:
        return Decision(True, c.FORCED, f"--force: moved although {why}", paired)
    return Decision(False, c.KEPT, f"{why}; the holder stays (--force moves it)", paired)


def _holder_score(client: MlflowClient, version: ModelVersion, metric: str) -> float | None:
    value = version.tags.get(metric)
    if value is None and version.run_id:
        value = client.get_run(version.run_id).data.metrics.get(metric)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def promote(
    client: MlflowClient, name: str, alias: str, previous_alias: str, new: ModelVersion, current: ModelVersion | None
) -> None:
    """Point `alias` at the new version and `previous_alias` at the former holder."""
    if current is not None and current.version != new.version:
        client.set_registered_model_alias(name, previous_alias, current.version)
    client.set_registered_model_alias(name, alias, new.version)


def record(client: MlflowClient, name: str, version: str, tags: dict[str, str]) -> None:
    """Set several tags on a model version."""
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def rollback(client: MlflowClient, name: str, alias: str, previous_alias: str) -> str:
    """Swap `alias` and `previous_alias`: the former holder comes back; a line saying what moved."""
    current, before = holder(client, name, alias), holder(client, name, previous_alias)
    if before is None:
        raise CommandError(f"model {name!r} has no version with alias {previous_alias!r}: nothing to roll back to")
    client.set_registered_model_alias(name, alias, before.version)
    if current is not None:
        client.set_registered_model_alias(name, previous_alias, current.version)
        record(client, name, current.version, {c.ROLLED_BACK: "true"})
    was = f"v{current.version}" if current else "nothing"
    return f"rolled back {name}@{alias}: v{before.version} (was {was}); @{previous_alias} -> {was}"
