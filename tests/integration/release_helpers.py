"""Test helpers for releases: a search written to MLflow exactly as docs/tracking.md says, and a git repository.

A release reads only MLflow, so a search made here is as good as one made by search/run.py, and much faster.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import uuid
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from search.release import main
from trainables.data import load_dataset

WEAK = {"model": "logistic_regression", "feature_set": "basic", "C": "0.01", "class_weight": "none"}  # test 0.8
GOOD = {"model": "knn", "feature_set": "subset", "n_neighbors": "5", "weights": "uniform", "p": "2"}  # 0.9667
BEST = {"model": "logistic_regression", "feature_set": "squared", "C": "10.0", "class_weight": "none"}  # 1.0


def trial(params: dict[str, str], val_accuracy: float, val_f1: float = 0.9, fit_time_s: float = 0.01, **extra) -> dict:
    """One trial's spec: its flat params (seed 0, 5 folds added) and metrics."""
    metrics = {"val_accuracy": val_accuracy, "val_f1": val_f1, "fit_time_s": fit_time_s, "folds_done": 5.0}
    metrics.update({"train_accuracy": 1.0, "train_f1": 1.0})
    return {"params": {**params, "seed": "0", "cv_folds": "5"}, "metrics": metrics, **extra}


def make_search(
    client: MlflowClient,
    experiment: str,
    trials: list[dict[str, Any]],
    commit: str,
    dataset: str = "iris",
    target: str = "",
    status: str = "FINISHED",
) -> tuple[str, list[str]]:
    """Write a search (parent run + one child run per trial) to MLflow; returns (search_id, trial run ids)."""
    found = client.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else client.create_experiment(experiment)
    data = load_dataset(dataset, target or None)
    search_id = uuid.uuid4().hex[:12]
    common = {"search_id": search_id, "git_commit": commit, "dataset": data.name, "dataset_digest": data.digest}
    parent_tags = {**common, "run_type": "search", "git_dirty": "false", "dataset_source": dataset}
    parent = client.create_run(exp_id, run_name=f"search-{search_id}", tags=parent_tags)
    pid = parent.info.run_id
    params = {"dataset": dataset, "target": target, "test_size": "0.2", "split_seed": "0", "seed": "0", "cv_folds": "5"}
    params.update(
        {"models": "knn,logistic_regression", "feature_sets": "basic,subset,squared", "metric": "val_accuracy"}
    )
    client.log_batch(pid, params=[Param(k, v) for k, v in params.items()])
    run_ids = []
    for index, spec in enumerate(trials):
        tags = {**common, "run_type": "trial", "mlflow.parentRunId": pid, "trial_index": str(index), "node": "n"}
        run = client.create_run(exp_id, run_name=f"trial_{index:05d}", tags={**tags, "trial_id": f"t{index}"})
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(k, float(v), 0, 0) for k, v in spec["metrics"].items()],
            params=[Param(k, str(v)) for k, v in spec["params"].items()],
        )
        client.set_terminated(run.info.run_id, spec.get("status", "FINISHED"))
        run_ids.append(run.info.run_id)
    client.log_batch(pid, tags=[RunTag("best_trial_run_id", run_ids[0] if run_ids else "")])
    client.set_terminated(pid, status)
    return search_id, run_ids


def git(repo: Path, *args: str) -> str:
    """Run git in `repo`, return its stdout (raises on failure)."""
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


def make_repo(path: Path) -> tuple[Path, str]:
    """A git repository with one commit and a local identity; returns (path, commit)."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "release-test@example.invalid")
    git(path, "config", "user.name", "Release Test")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "config", "tag.gpgsign", "false")
    (path / "train.py").write_text("print('trained')\n")
    git(path, "add", "train.py")
    git(path, "commit", "-q", "-m", "training code")
    return path, git(path, "rev-parse", "HEAD")


def add_commit(repo: Path, name: str = "later.txt") -> str:
    """Another commit on top (HEAD moves away from the training commit); its sha."""
    (repo / name).write_text("later\n")
    git(repo, "add", name)
    git(repo, "commit", "-q", "-m", f"add {name}")
    return git(repo, "rev-parse", "HEAD")


def run_cli(*argv: str) -> tuple[int, str, str]:
    """main(argv) in-process; (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def snapshot(client: MlflowClient, name: str, repo: Path | None = None) -> tuple:
    """What a refused release must leave unchanged: versions, aliases, runs, git tags."""
    versions = sorted(int(v.version) for v in client.search_model_versions(f"name = '{name}'"))
    try:
        aliases = dict(client.get_registered_model(name).aliases)
    except Exception:  # noqa: BLE001 - no registered model yet
        aliases = {}
    runs = len(client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=50000))
    tags = git(repo, "tag", "-l") if repo else ""
    return versions, aliases, runs, tags
