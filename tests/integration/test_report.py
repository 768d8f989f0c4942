"""The report, read only from a real `mlflow server`: of a real search, and of searches logged by hand.

Hand-logged searches follow docs/tracking.md. Every check compares the report's files with what MLflow returns
(MlflowClient), not with the report's own code.
"""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from pathlib import Path

import pandas as pd
import pytest
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from pictures import check_png

from search import report
from search.common.runs_table import load_search
from search.run import main as run_main

pytestmark = pytest.mark.integration
FILES = ("experiment_report.md", "model_summary.csv", "model_comparison.png", "all_runs_comparison.png",
         "optimization_history.png", "param_importance.png", "parallel_coordinates.png",
         "pareto_front.png")  # fmt: skip
METRICS = {"val_accuracy": 0.95, "val_f1": 0.949, "train_accuracy": 0.98, "train_f1": 0.979, "fit_time_s": 0.012}


def cli(*argv: str) -> tuple[int, str, str]:
    """report.main(argv) in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = report.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def log_search(client: MlflowClient, experiment: str, trials: list[dict]) -> tuple[str, str]:
    """A parent run and one child run per trial, named as docs/tracking.md says; returns (search_id, parent id)."""
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(experiment)
    sid = uuid.uuid4().hex[:12]
    common = {"search_id": sid, "git_commit": "0" * 40, "dataset": "iris", "dataset_digest": "sha256:x"}
    parent = client.create_run(exp_id, run_name=f"search-{sid}", tags={**common, "run_type": "search"}).info.run_id
    settings = {"dataset": "iris", "models": "svm,knn", "feature_sets": "basic,pca", "num_samples": str(len(trials)),
                "max_concurrent": "2", "seed": "0", "cv_folds": "5", "metric": "val_accuracy"}  # fmt: skip
    client.log_batch(parent, params=[Param(k, v) for k, v in settings.items()])
    for index, spec in enumerate(trials):
        tags = {**common, "run_type": "trial", "mlflow.parentRunId": parent, "trial_index": str(index),
                "trial_id": f"t{index}", "node": "n1", "hostname": "h", **spec.get("tags", {})}  # fmt: skip
        run = client.create_run(exp_id, run_name=f"t{index}", tags=tags).info.run_id
        params = {**spec["params"], "seed": "0", "cv_folds": "5"}
        metrics = [Metric(k, float(v), 0, 0) for k, v in spec.get("metrics", {}).items()]
        client.log_batch(run, metrics=metrics, params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(run, spec.get("status", "FINISHED"))
    client.set_terminated(parent, "FINISHED")
    return sid, parent


def svm(c: str, acc: float, feature_set: str = "basic", **extra) -> dict:
    metrics = {**METRICS, "val_accuracy": acc, "folds_done": 5}
    return {"params": {"model": "svm", "feature_set": feature_set, "C": c, "gamma": "0.1", "kernel": "rbf"},
            "metrics": metrics, **extra}  # fmt: skip


def knn(k: str, acc: float, feature_set: str = "pca", **extra) -> dict:
    metrics = {**METRICS, "val_accuracy": acc, "folds_done": 5}
    return {"params": {"model": "knn", "feature_set": feature_set, "n_neighbors": k, "weights": "uniform", "p": "2"},
            "metrics": metrics, **extra}  # fmt: skip


FAILED = {"params": {"model": "svm", "feature_set": "pca", "C": "1e9", "gamma": "0.1", "kernel": "rbf"},
          "status": "FAILED", "tags": {"error": "ValueError: C out of range"}}  # fmt: skip


def check_report(client: MlflowClient, out: Path, parent_id: str) -> pd.DataFrame:
    """Every file, the CSV against MLflow, the PNGs, the Markdown links, the artifacts on the parent run."""
    parent = client.get_run(parent_id)
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'", max_results=500)
    costed = any("predict_ms" in r.data.metrics for r in runs)  # the cost figure only when trials recorded it
    files = FILES if costed else FILES[:-1]
    assert (out / "pareto_front.png").is_file() == costed
    for name in files:
        assert (out / name).is_file(), name
    for name in files[2:]:
        check_png(out / name)
    csv = pd.read_csv(out / "model_summary.csv", dtype=str, keep_default_na=False).set_index("run_id")
    assert sorted(csv.index) == sorted(r.info.run_id for r in runs) and len(csv) == len(runs)
    for run in runs:
        row = csv.loc[run.info.run_id]
        assert row["status"] == run.info.status and row["trial_index"] == run.data.tags["trial_index"]
        for key, value in run.data.metrics.items():
            assert float(row[key]) == value, (key, row[key], value)
        for key, value in run.data.params.items():
            assert row[key] == value, (key, row[key], value)
        for key in set(METRICS) - set(run.data.metrics):
            assert row[key] == "", f"a missing {key} must stay empty, not {row[key]!r}"
    text = (out / "experiment_report.md").read_text()
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert set(files[1:]) <= set(links)
    assert all((out / link).is_file() for link in links)
    assert parent.data.tags["search_id"] in text
    check_importance_sizes(text, csv)
    logged = {a.path for a in client.list_artifacts(parent_id, "report")}
    assert logged == {f"report/{name}" for name in files}
    return csv


def check_importance_sizes(text: str, csv: pd.DataFrame) -> None:
    """The importance paragraph's n, overall and per model family, are the CSV's counts of completed trials."""
    paragraph = text.split("### Parameter importance")[1].split("###")[0]
    done = csv[csv["outcome"] == "completed"]["model"].value_counts()
    if "No importance computed" in paragraph:
        return
    if "No panel over all trials" not in paragraph:
        assert f"over all n={done.sum()} completed trials" in paragraph
    panels = dict(re.findall(r"(\w+) \(n=(\d+)\)", paragraph))
    assert all(int(n) == done[family] for family, n in panels.items()), (panels, done.to_dict())
    left_out = [f for f in done.index if f not in panels]
    assert all(f"No panel for {f} (" in paragraph or f"; {f} (" in paragraph for f in left_out), paragraph


def test_report_of_a_real_search(mlflow_server, ray_session, quiet_env, tmp_path):
    argv = ["--tracking-uri", mlflow_server, "--experiment", "it-report", "--num-samples", "8", "--max-concurrent",
            "2", "--models", "logistic_regression,knn", "--feature-sets", "basic,subset", "--cv-folds", "3",
            "--seed", "1", "--storage-path", str(tmp_path / "ray_results")]  # fmt: skip
    assert run_main(argv) == 0
    code, out, err = cli("--tracking-uri", mlflow_server, "--experiment", "it-report", "--out", str(tmp_path / "r"))
    assert code == 0, err
    client = MlflowClient(mlflow_server)
    parent = load_search(client, "it-report").parent
    csv = check_report(client, tmp_path / "r", parent.info.run_id)
    assert len(csv) == 8 and set(csv["model"]) <= {"logistic_regression", "knn"}
    best = csv.loc[parent.data.tags["best_trial_run_id"]]
    text = (tmp_path / "r" / "experiment_report.md").read_text()
    assert f"`{best['run_name']}`" in text.split("## Best trial overall")[1].split("##")[0]
    spent = text.split("## Where the time went")[1].split("##")[0]  # the slot time split three ways, adding up
    shares = [int(line.rsplit("(", 1)[1].split("%")[0]) for line in spent.splitlines() if "%)" in line]
    assert len(shares) == 3 and all(0 <= s <= 100 for s in shares) and abs(sum(shares) - 100) <= 2
    assert float(csv["trial_time_s"].astype(float).min()) > 0


def test_failed_and_stopped_trials_are_reported_as_such(mlflow_server, quiet_env, tmp_path):
    client = MlflowClient(mlflow_server)
    stopped = svm("3.0", 0.91, metrics={**METRICS, "folds_done": 2})
    best = svm("10.0", 0.9667, "pca", metrics={**METRICS, "val_accuracy": 0.9667, "val_f1": 0.96, "folds_done": 5})
    trials = [svm("1.0", 0.95), knn("5", 0.9667), FAILED, best, stopped, knn("9", 0.9)]
    sid, parent = log_search(client, "it-report-failed", trials)
    path = report.write_report(mlflow_server, "it-report-failed", sid, tmp_path)
    csv = check_report(client, tmp_path, parent)
    by_index = csv.set_index("trial_index")
    assert by_index.loc["2", "outcome"] == "failed" and by_index.loc["2", "val_accuracy"] == ""
    assert by_index.loc["2", "error"] == "ValueError: C out of range"
    assert by_index.loc["4", "outcome"] == "stopped"
    text = path.read_text()
    assert "1 failed" in text and "1 stopped early" in text and "ValueError: C out of range" in text
    overall = text.split("## Best trial overall")[1].split("##")[0]
    assert "`t3`" in overall and "2 trials reached" in overall  # ties knn t1 on accuracy; higher val_f1 wins


def test_an_older_search_by_id_and_the_champion(mlflow_server, quiet_env, tmp_path):
    client = MlflowClient(mlflow_server)
    old_sid, old_parent = log_search(client, "it-report-two", [svm("1.0", 0.9), knn("3", 0.95)])
    log_search(client, "it-report-two", [svm("2.0", 0.97), knn("4", 0.93)])
    name = f"report_it_{uuid.uuid4().hex[:6]}"
    release = client.create_run(client.get_experiment_by_name("it-report-two").experiment_id).info.run_id
    client.log_batch(release, metrics=[Metric("test_accuracy", 0.9333, 0, 0), Metric("test_f1", 0.93, 0, 0)],
                     tags=[RunTag("run_type", "release"), RunTag("search_id", old_sid)])  # fmt: skip
    client.create_registered_model(name)
    version = client.create_model_version(name, f"runs:/{release}/model", run_id=release, tags={"search_id": old_sid})
    client.set_registered_model_alias(name, "champion", version.version)
    code, _, err = cli("--tracking-uri", mlflow_server, "--experiment", "it-report-two", "--search-id", old_sid,
                       "--out", str(tmp_path), "--model-name", name)  # fmt: skip
    assert code == 0, err
    check_report(client, tmp_path, old_parent)
    champion = (tmp_path / "experiment_report.md").read_text().split("## Released champion")[1].split("##")[0]
    assert f"Version {version.version} of `{name}`" in champion and "this search" in champion
    assert "| test_accuracy | 0.9333 |" in champion and "| test_f1 | 0.9300 |" in champion


@pytest.mark.bad_input("report: search with no finished trial")
def test_no_finished_trial_is_one_line_and_non_zero(mlflow_server, quiet_env, tmp_path):
    client = MlflowClient(mlflow_server)
    sid, _ = log_search(client, "it-report-none", [FAILED, FAILED])
    code, out, err = cli("--tracking-uri", mlflow_server, "--experiment", "it-report-none", "--out", str(tmp_path))
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "no finished trial" in err and sid in err and "Traceback" not in err
    assert not (tmp_path / "experiment_report.md").exists()


@pytest.mark.parametrize(
    "experiment",
    [
        pytest.param("it-report-unknown", marks=pytest.mark.bad_input("report: unknown experiment")),
        pytest.param("it-report-empty", marks=pytest.mark.bad_input("report: empty experiment")),
    ],
)
def test_unknown_or_empty_experiment_is_one_line_and_non_zero(mlflow_server, quiet_env, tmp_path, experiment):
    client = MlflowClient(mlflow_server)
    if experiment.endswith("empty") and client.get_experiment_by_name(experiment) is None:
        client.create_experiment(experiment)
    code, out, err = cli("--tracking-uri", mlflow_server, "--experiment", experiment, "--out", str(tmp_path))
    assert code != 0 and out == "" and err.count("\n") == 1 and experiment in err and "Traceback" not in err
