"""Records for MLflow's UI, written to a real `mlflow server` and read back the way the UI reads them."""

from __future__ import annotations

import time
import uuid

import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from search.common import mlflow_records as mr
from search.searching.parent_run import start_parent_run
from trainables.data import load_dataset, split_dataset


@pytest.fixture(scope="module")
def split():
    return split_dataset(load_dataset("iris"), 0.25, 7)


def _parts(split):
    dev = mr.data_part(split.X_dev, split.y_dev, "iris-development", "training")
    test = mr.data_part(split.X_test, split.y_test, "iris-test", "testing")
    return dev, test


@pytest.mark.integration
def test_experiment_runs_and_data_read_back_as_the_ui_reads_them(mlflow_server, quiet_env, split):
    client = MlflowClient(mlflow_server)
    dev, test = _parts(split)
    source = mr.source_tags("search/run.py", "0123456789abcdef0123456789abcdef01234567")
    experiment_id, parent_id = start_parent_run(client, f"records-{uuid.uuid4().hex[:8]}", "abc", source, {})
    parent = client.get_run(parent_id)
    mr.log_data(client, parent.info.run_id, [dev, test])
    mr.log_data(client, parent.info.run_id, [dev])  # logged twice: still one input per part

    search_start = int(time.time() * 1000)
    created = {}
    times = mr.StartTimes()
    for index in (2, 0, 3, 1):  # trials start out of proposal order, all within one millisecond
        start = times(index, now_ms=search_start)
        tags = {**source, "mlflow.parentRunId": parent.info.run_id, "trial_index": str(index)}
        name = f"{index:04d}-svm-basic"  # as TrialTracker opens a trial's run
        created[index] = client.create_run(experiment_id, start_time=start, run_name=name, tags=tags).info.run_id

    experiment = client.get_experiment(experiment_id)
    assert experiment.tags[mr.EXPERIMENT_KIND] == "custom_model_development"

    run = client.get_run(parent.info.run_id)
    assert run.data.tags["mlflow.source.name"] == "search/run.py"
    assert run.data.tags["mlflow.source.type"] == "LOCAL"
    assert run.data.tags["mlflow.source.git.commit"].startswith("0123456789")
    inputs = {d.dataset.name: d for d in run.inputs.dataset_inputs}
    assert sorted(inputs) == ["iris-development", "iris-test"]
    assert len(run.inputs.dataset_inputs) == 2
    assert inputs["iris-development"].dataset.digest == dev.digest != test.digest
    assert {t.key: t.value for t in inputs["iris-test"].tags}[MLFLOW_DATASET_CONTEXT] == "testing"
    assert '"num_rows": ' + str(len(split.y_test)) in inputs["iris-test"].dataset.profile

    children = client.search_runs(
        [experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["attributes.start_time ASC"]
    )
    assert [r.data.tags["trial_index"] for r in children] == ["0", "1", "2", "3"]
    assert all(abs(r.info.start_time - search_start) < 60_000 for r in children)


def test_start_times_follow_the_proposal_order_and_stay_near_the_truth():
    times = mr.StartTimes()
    assert times(0, now_ms=1_000) == 1_000  # in order: the real time
    assert times(2, now_ms=1_050) == 1_050
    assert times(1, now_ms=1_060) == 1_025  # started after a later proposal: between its neighbours
    assert times(3, now_ms=1_040) == 1_051  # started early: just after the one proposed before it
    assert times(1, now_ms=9_999) == 1_025  # asked again: the same time
    assert times(4, now_ms=2_000) == 2_000
    assert times(5, now_ms=2_000) == 2_001
    assert [i for i, _ in sorted(times.assigned.items(), key=lambda kv: kv[1])] == [0, 1, 2, 3, 4, 5]


def test_same_data_same_digest_other_data_other_digest(split):
    first = mr.data_part(split.X_dev, split.y_dev, "iris-development", "training")
    again = mr.data_part(split.X_dev.copy(), split.y_dev.copy(), "iris-development", "training")
    changed = split.X_dev.copy()
    changed.iloc[0, 0] += 0.1
    other = mr.data_part(changed, split.y_dev, "iris-development", "training")
    assert first.digest == again.digest != other.digest


def test_source_tags_leave_out_an_unknown_commit():
    assert "mlflow.source.git.commit" not in mr.source_tags("search/run.py", "unknown")


@pytest.mark.integration
def test_classifier_evaluation_of_a_registered_version(mlflow_server, quiet_env, split):
    import mlflow
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from search.releasing import registry

    client = MlflowClient(mlflow_server)
    mlflow.set_tracking_uri(mlflow_server)
    experiment_id = client.create_experiment(f"release-{uuid.uuid4().hex[:8]}")
    run_id = client.create_run(experiment_id, run_name="release-abc").info.run_id
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=0))
    pipeline.fit(split.X_dev, split.y_dev)
    with mlflow.start_run(run_id=run_id):
        model_uri = registry.log_pipeline(pipeline, split.X_dev.head(5))
    name = f"records_model_{uuid.uuid4().hex[:6]}"
    version = registry.register(client, name, model_uri, run_id, {"search_id": "abc"})

    metrics = mr.evaluate_model(mlflow_server, run_id, model_uri, split.X_test, split.y_test, "iris-test")
    mr.link_evaluation(client, name, version.version, run_id)

    assert mlflow.active_run() is None
    expected = float((pipeline.predict(split.X_test) == split.y_test.to_numpy()).mean())
    assert metrics["accuracy_score"] == pytest.approx(expected)
    run = client.get_run(run_id)
    assert run.data.metrics["accuracy_score"] == pytest.approx(expected)
    assert "f1_score" in run.data.metrics
    artifacts = {a.path for a in client.list_artifacts(run_id)}
    for wanted in ("confusion_matrix.png", "roc_curve_plot.png", "precision_recall_curve_plot.png"):
        assert wanted in artifacts, sorted(artifacts)
    assert "iris-test" in {d.dataset.name for d in run.inputs.dataset_inputs}
    model_id = model_uri.removeprefix("models:/")
    assert client.get_logged_model(model_id).metrics, "evaluation metrics are linked to the logged model"
    assert {m.key for m in client.get_logged_model(model_id).metrics} >= {"accuracy_score"}
    assert client.get_model_version(name, version.version).tags["evaluation_run_id"] == run_id
