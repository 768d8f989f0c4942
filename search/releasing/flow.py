"""A release as a short sequence of named steps: choose, plan, retrain, record, register, evaluate, publish.

Every refusal comes before anything is written; a rerun for the same search completes what a failed run left.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.entities.model_registry import ModelVersion

from search.common import contract as c
from search.common import mlflow_records as mr
from search.common.figures import save_confusion_matrix, save_predicted_actual
from search.common.lookup import experiment_of, find_search
from search.releasing import choice as ch
from search.releasing import git_tag, registry
from search.releasing.budget import Budget
from search.releasing.publish import Context, ReleaseSettings, publish
from search.releasing.retrain import Lineage, Scores, fit, lineage_of, rebuild_split, score
from trainables.data import recorded_source


@dataclass
class Plan:
    """What the release will make, decided before anything is written."""

    chosen: ch.Choice
    experiment: str
    lineage: Lineage
    model_name: str
    commit: str
    existing: ModelVersion | None
    check: git_tag.Preflight | None


def release(settings: ReleaseSettings, client: MlflowClient) -> int:
    """Choose, check, retrain, register, gate, tag and document one release; 0 when done."""
    plan = plan_release(settings, client)
    split = rebuild_split(plan.lineage, settings.dataset)
    pipeline = fit(plan.lineage, split)
    scores = score(pipeline, split)
    shown = [f"{k} {scores.metrics[k]:.4f}" for k in c.TEST_SCORES if k in scores.metrics]
    print(f"test part ({len(split.y_test)} rows): " + ", ".join(shown))
    scores.metrics.update(serving_cost(pipeline, split.X_test))
    run_id = release_run(client, plan)
    try:
        record_run(client, run_id, plan, pipeline, split, scores)
        version = register_version(settings, client, plan, run_id, scores)
        evaluate(settings, client, run_id, plan, version, split)
        check = plan.check
        if check is not None and check.tag != c.git_tag_name(plan.model_name, version.version):
            check = _preflight(settings, plan.commit, plan.model_name, version.version)
        rows = (len(split.y_dev), len(split.y_test))
        gate = c.test_metric_for(plan.chosen.metric)
        context = Context(plan.model_name, version, scores, plan.chosen, plan.lineage, check, run_id, gate, rows, split)
        publish(settings, client, context)
    except BaseException:
        client.set_terminated(run_id, status="FAILED")  # the next run completes it
        raise
    client.set_terminated(run_id, status="FINISHED")
    return 0


def serving_cost(pipeline, X_test) -> dict[str, float]:
    """What the released model costs to serve, measured on the test part as every trial measures it: `predict_ms`
    (CPU ms for 1,000 rows, median of 5) and `model_bytes` (as logged)."""
    from trainables.trainable import serialised_size, time_to_predict

    return {c.PREDICT_MS: time_to_predict(pipeline, X_test), c.MODEL_BYTES: float(serialised_size(pipeline))}


def plan_release(settings: ReleaseSettings, client: MlflowClient) -> Plan:
    """The search and its best trial, the model's name, and every check that can refuse before anything is written."""
    budget = Budget(settings.max_predict_ms, settings.max_model_mb)
    chosen = ch.choose(client, settings.experiment, settings.search_id, settings.metric, budget)
    experiment = experiment_of(client, chosen.search)
    print(f"releasing from experiment {experiment!r}")
    print(ch.describe(chosen))
    trial = chosen.best
    lineage = lineage_of(chosen.search, trial)
    name = settings.model_name or c.model_name(experiment)
    commit = trial.data.tags.get(c.GIT_COMMIT) or chosen.search.data.tags.get(c.GIT_COMMIT, "unknown")
    existing = registry.find_version(client, name, chosen.search_id, trial.info.run_id)
    check = None
    if not settings.no_tag:
        number = existing.version if existing else registry.next_version(client, name)
        check = _preflight(settings, commit, name, number)
    return Plan(chosen, experiment, lineage, name, commit, existing, check)


def _preflight(settings: ReleaseSettings, commit: str, name: str, version: int | str) -> git_tag.Preflight:
    s = settings
    return git_tag.preflight(s.repo, commit, name, version, s.allow_dirty, s.push, s.remote)


def run_tags(plan: Plan) -> dict[str, str]:
    """The release run's tags: what it was made from."""
    search = plan.chosen.search
    return {
        c.RUN_TYPE: c.RELEASE_RUN,
        c.SEARCH_ID: plan.chosen.search_id,
        c.SOURCE_RUN_ID: plan.chosen.best.info.run_id,
        c.GIT_COMMIT: plan.commit,
        c.DATASET: search.data.tags.get(c.DATASET) or Path(plan.lineage.dataset_source).stem,
        "search_git_dirty": search.data.tags.get(c.GIT_DIRTY, "unknown"),
        **plan.lineage.as_tags(),
    }


def release_run(client: MlflowClient, plan: Plan) -> str:
    """The release run: the registered version's, one an earlier attempt left, or a new one."""
    if plan.existing is not None:
        return plan.existing.run_id
    sid, trial_run = plan.chosen.search_id, plan.chosen.best.info.run_id
    query = f"tags.{c.RUN_TYPE} = '{c.RELEASE_RUN}' and tags.{c.SEARCH_ID} = '{sid}'"
    query += f" and tags.source_run_id = '{trial_run}'"
    runs = client.search_runs([plan.chosen.search.info.experiment_id], query, order_by=["attributes.start_time DESC"])
    runs.sort(key=lambda r: c.MODEL_URI not in r.data.tags)  # prefer one whose model was logged
    if runs:
        return runs[0].info.run_id
    experiment_id = plan.chosen.search.info.experiment_id
    return client.create_run(experiment_id, run_name=f"release-{sid}", tags=run_tags(plan)).info.run_id


def record_run(client: MlflowClient, run_id: str, plan: Plan, pipeline, split, scores: Scores) -> None:
    """Tags, params, the training part, the logged Pipeline and the test scores on the release run (what is there
    already is kept)."""
    import mlflow

    current = client.get_run(run_id)
    if not current.data.tags.get(c.MODEL_URI):  # the training part as an MLflow dataset: the UI's Dataset column
        mr.log_data(client, run_id, [_data_part(plan, split.X_dev, split.y_dev, "development", "training")])
    logged = current.data.params
    params = [Param(k, str(v)) for k, v in plan.lineage.params.items() if k not in logged]
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in run_tags(plan).items()], params=params)
    if not current.data.tags.get(c.MODEL_URI):
        with mlflow.start_run(run_id=run_id):  # MLflow links a logged model to the active run only
            model_uri = registry.log_pipeline(pipeline, split.X_dev.head(5), gaps=not split.roles.plain)
        client.set_tag(run_id, c.MODEL_URI, model_uri)
    if c.TEST_ACCURACY not in current.data.metrics and c.TEST_RMSE not in current.data.metrics:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, 0) for k, v in scores.metrics.items()])
        with tempfile.TemporaryDirectory() as tmp:
            if split.task == c.REGRESSION:
                path, title = Path(tmp) / "test_predicted_actual.png", f"{plan.model_name}: the test part"
                png = save_predicted_actual(split.y_test, scores.predicted, path, title)
            else:
                client.log_dict(run_id, scores.report, "test/classification_report.json")
                path, title = Path(tmp) / "test_confusion_matrix.png", f"{plan.model_name}\ntest part"
                png = save_confusion_matrix(scores.matrix, scores.classes, path, title)
            client.log_artifact(run_id, str(png), "test")


def _data_part(plan: Plan, X, y, part: str, context: str) -> mr.DataPart:
    name = f"{run_tags(plan)[c.DATASET]}-{part}"
    return mr.data_part(X, y, name, context, recorded_source(plan.lineage.dataset_source))


def evaluate(settings: ReleaseSettings, client: MlflowClient, run_id: str, plan: Plan, version, split) -> None:
    """MLflow's evaluation of the logged model on the test part, once, on the release run that the version names."""
    run = client.get_run(run_id)
    kind = "regressor" if split.task == c.REGRESSION else "classifier"
    if mr.EVALUATED[kind] not in run.data.metrics:
        print("evaluating the model on the test part with mlflow.models.evaluate ...", flush=True)
        model_uri, name = run.data.tags[c.MODEL_URI], f"{run_tags(plan)[c.DATASET]}-test"
        mr.evaluate_model(settings.tracking_uri, run_id, model_uri, split.X_test, split.y_test, name, kind)
    if version.tags.get(c.EVALUATION_RUN_ID) != run_id:
        mr.link_evaluation(client, plan.model_name, version.version, run_id)


def register_version(
    settings: ReleaseSettings, client: MlflowClient, plan: Plan, run_id: str, scores: Scores
) -> ModelVersion:
    """Register the logged Pipeline as a new version, or find the one an earlier run registered."""
    name = plan.model_name
    tags = {
        **run_tags(plan),
        "release_run_id": run_id,
        **{k: f"{v:.6g}" for k, v in scores.metrics.items() if "." not in k},
    }
    if settings.allow_dirty and plan.check is not None and plan.check.dirty:
        tags[c.DIRTY_RELEASE] = "true"
    if plan.existing is None:
        model_uri = client.get_run(run_id).data.tags[c.MODEL_URI]
        version = registry.register(client, name, model_uri, run_id, tags)
        print(f"registered {name} v{version.version} from release run {run_id}")
        return version
    dirty = {k: v for k, v in tags.items() if k == c.DIRTY_RELEASE}
    registry.record(client, name, plan.existing.version, dirty)
    print(f"found {name} v{plan.existing.version}, already registered for this search and trial: no new version")
    return plan.existing


def target_model(settings: ReleaseSettings, client: MlflowClient) -> str:
    """The registered model `--verify` and `--rollback` act on: `--model-name`, else that of `--experiment`, else
    that of the latest search's experiment (said on stdout)."""
    if settings.model_name:
        return settings.model_name
    experiment = settings.experiment
    if experiment is None:
        latest = find_search(client, settings.search_id)
        experiment = experiment_of(client, latest)
    name = c.model_name(experiment)
    print(f"model {name} (experiment {experiment!r})")
    return name
