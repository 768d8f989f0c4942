"""search/release.py against a real `mlflow server` and real git repositories made in tmp folders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from release_helpers import BEST, GOOD, WEAK, add_commit, git, make_repo, make_search, run_cli, snapshot, trial

from cluster.processes import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
EXP, MODEL = "release_exp", "release_iris_model"  # own names: other tests of the session may release Iris too


@pytest.fixture(scope="module")
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(mlflow_server)


@pytest.fixture(scope="module")
def shared(mlflow_server, client, tmp_path_factory):
    """One search (a tie on val_accuracy) released once as v1 of the Iris model; HEAD moved on since."""
    repo, commit = make_repo(tmp_path_factory.mktemp("git") / "repo")
    trials = [trial(WEAK, 0.95, val_f1=0.94), trial(GOOD, 0.95, val_f1=0.95), trial(BEST, 0.90)]
    search_id, run_ids = make_search(client, EXP, trials, commit)
    add_commit(repo)
    out = tmp_path_factory.mktemp("releases")
    base = ["--tracking-uri", mlflow_server, "--experiment", EXP, "--model-name", MODEL]
    base += ["--repo", str(repo), "--out", str(out)]
    code, stdout, stderr = run_cli(*base)
    assert code == 0, stderr
    return {"repo": repo, "commit": commit, "search_id": search_id, "runs": run_ids, "out": out, "base": base,
            "stdout": stdout}  # fmt: skip


def test_choice_states_tie_break_and_runner_up(shared, client):
    version = client.get_model_version_by_alias(MODEL, "champion")
    assert version.tags["source_run_id"] == shared["runs"][1]
    assert f"runner-up: trial run {shared['runs'][0]}" in shared["stdout"]
    assert "decided by: tie on val_accuracy; higher val_f1 (0.95 vs 0.94)" in shared["stdout"]
    said = next(line for line in shared["stdout"].splitlines() if line.startswith("test part ("))
    assert "rows): test_accuracy " in said and ", test_f1 " in said  # the release says what it measured


def test_card_fields_match_mlflow(shared, client):
    version = client.get_model_version_by_alias(MODEL, "champion")
    card = json.loads((shared["out"] / MODEL / f"v{version.version}" / "model_card.json").read_text())
    release_run = client.get_run(version.run_id)
    trial_run = client.get_run(shared["runs"][1])
    assert (card["model_name"], card["version"], card["run_id"]) == (MODEL, version.version, version.run_id)
    assert release_run.data.tags["run_type"] == "release"
    assert card["test_metrics"]["test_accuracy"] == pytest.approx(release_run.data.metrics["test_accuracy"])
    assert card["test_metrics"]["test_f1"] == pytest.approx(release_run.data.metrics["test_f1"])
    assert set(card["test_metrics"]["per_class"]) == {"setosa", "versicolor", "virginica"}
    assert card["metrics"]["val_accuracy"] == trial_run.data.metrics["val_accuracy"]
    assert card["parameters"] == trial_run.data.params
    lineage = card["lineage"]
    assert lineage["git_commit"] == shared["commit"] == version.tags["git_commit"]
    assert lineage["dataset_digest"] == trial_run.data.tags["dataset_digest"] == version.tags["dataset_digest"]
    assert (lineage["search_id"], lineage["trial_run_id"]) == (shared["search_id"], shared["runs"][1])
    assert card["created_at"].endswith("Z") and card["intended_use"] and card["limitations"]
    markdown = (shared["out"] / MODEL / f"v{version.version}" / "model_card.md").read_text()
    assert f"# Model card: {MODEL} v{version.version}" in markdown
    info = json.loads((shared["out"] / MODEL / f"v{version.version}" / "model_release_info.json").read_text())
    assert info["alias_uri"] == f"models:/{MODEL}@champion" and info["git_tag"] == f"{MODEL}-v{version.version}"
    logged = {f.path for f in client.list_artifacts(version.run_id, "release")}
    assert "release/model_card.json" in logged
    assert "test/test_confusion_matrix.png" in {f.path for f in client.list_artifacts(version.run_id, "test")}


def test_release_run_holds_mlflows_evaluation_and_its_data(shared, client):
    version = client.get_model_version_by_alias(MODEL, "champion")
    run = client.get_run(version.run_id)
    assert version.tags["evaluation_run_id"] == run.info.run_id
    # mlflow.models.evaluate scored the same model on the same test part as the release's own scoring
    assert run.data.metrics["accuracy_score"] == pytest.approx(run.data.metrics["test_accuracy"])
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"roc_curve_plot.png", "precision_recall_curve_plot.png"} <= artifacts, sorted(artifacts)
    assert {d.dataset.name for d in run.inputs.dataset_inputs} == {"iris-development", "iris-test"}


def test_tag_is_annotated_on_training_commit(shared, client):
    version = client.get_model_version_by_alias(MODEL, "champion")
    tag = f"{MODEL}-v{version.version}"
    repo = shared["repo"]
    assert git(repo, "cat-file", "-t", tag) == "tag"
    assert git(repo, "rev-parse", f"{tag}^{{commit}}") == shared["commit"] != git(repo, "rev-parse", "HEAD")
    text = git(repo, "tag", "-l", "--format=%(contents)", tag)
    assert f"{MODEL} version {version.version}: test_accuracy=0.9667" in text


def test_rerun_adds_nothing(shared, client):
    before = snapshot(client, MODEL, shared["repo"])
    code, stdout, stderr = run_cli(*shared["base"], "--search-id", shared["search_id"])
    assert code == 0, stderr
    assert "no new version" in stdout and "exists already" in stdout
    assert snapshot(client, MODEL, shared["repo"]) == before


def test_verify_passes(shared, mlflow_server):
    code, stdout, _ = run_cli("--tracking-uri", mlflow_server, "--model-name", MODEL, "--verify")
    assert code == 0 and stdout.startswith("verify OK")


@pytest.mark.bad_input("release: dirty working tree")
def test_refuses_dirty_tree_then_allow_dirty_records_it(shared, client, mlflow_server):
    repo = shared["repo"]
    search_id, _ = make_search(client, EXP, [trial(WEAK, 0.99)], shared["commit"])
    before = snapshot(client, MODEL, repo)
    (repo / "train.py").write_text("print('edited')\n")
    try:
        code, stdout, stderr = run_cli(*shared["base"], "--search-id", search_id)
        assert code == 1 and "dirty" in stderr and len(stderr.strip().splitlines()) == 1
        assert "Traceback" not in stderr and snapshot(client, MODEL, repo) == before
        code, stdout, stderr = run_cli(*shared["base"], "--search-id", search_id, "--allow-dirty")
        assert code == 0, stderr
    finally:
        git(repo, "checkout", "--", "train.py")
    version = max(client.search_model_versions(f"name = '{MODEL}'"), key=lambda v: int(v.version))
    assert version.tags["released_from_dirty_tree"] == "true" and version.tags["search_id"] == search_id
    assert version.tags["promotion"] == "kept"  # 0.8 does not beat 0.9667: the gate keeps the champion


@pytest.mark.bad_input("release: tag taken by another commit, and outside a git repository")
def test_refuses_taken_tag_and_outside_repo(shared, client, tmp_path):
    repo = shared["repo"]
    search_id, _ = make_search(client, EXP, [trial(GOOD, 0.97)], shared["commit"])
    taken = max(int(v.version) for v in client.search_model_versions(f"name = '{MODEL}'")) + 1
    git(repo, "tag", "-a", f"{MODEL}-v{taken}", "HEAD", "-m", "someone else's")
    before = snapshot(client, MODEL, repo)
    try:
        code, _, stderr = run_cli(*shared["base"], "--search-id", search_id)
        assert code == 1 and f"tag {MODEL}-v{taken} already points at" in stderr
        assert snapshot(client, MODEL, repo) == before
    finally:
        git(repo, "tag", "-d", f"{MODEL}-v{taken}")
    code, _, stderr = run_cli(*shared["base"], "--search-id", search_id, "--repo", str(tmp_path))
    assert code == 1 and "is not a git repository" in stderr
    assert snapshot(client, MODEL)[:3] == before[:3]


@pytest.mark.bad_input("release: unknown search, no finished trial, unknown experiment, unreachable server")
def test_bad_inputs_one_line_nothing_written(shared, client, mlflow_server):
    failed_only = make_search(client, EXP, [{**trial(GOOD, 0.9), "status": "FAILED"}], shared["commit"])[0]
    before = snapshot(client, MODEL, shared["repo"])
    cases = {  # the message, the exit code of README's table, the flags
        f"no search 'nope' in experiment {EXP!r}": (2, ["--search-id", "nope"]),
        "no finished trial": (1, ["--search-id", failed_only]),
        "experiment 'no_such_experiment' does not exist": (2, ["--experiment", "no_such_experiment"]),
    }
    for expected, (exit_code, extra) in cases.items():
        code, _, stderr = run_cli(*shared["base"], *extra)
        assert code == exit_code and expected in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert snapshot(client, MODEL, shared["repo"]) == before
    dead = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, str(ROOT / "search" / "release.py"), "--tracking-uri", dead, "--no-tag"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "does not answer" in done.stderr and "Traceback" not in done.stderr
