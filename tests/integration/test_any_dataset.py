"""Any dataset end to end, as a new user runs it: MLflow's default `sqlite:///mlflow.db`, no flags after the search.

Iris and then wine are searched, released and reported in one clone of the project: each command acts on the
latest search and says which; both model cards, both reports and two distinct git tags stay, each on its own model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from search.common import contract

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SEARCH = ["--num-samples", "2", "--models", "knn,logistic_regression", "--feature-sets", "basic", "--cv-folds", "2"]


def command(repo: Path, script: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "PYTHONPATH")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    path = str(repo / "search" / script)
    return subprocess.run(
        [sys.executable, path, *args], cwd=repo, env=env, capture_output=True, text=True, timeout=timeout
    )


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of the project with a local identity: tags go there, never into the project's own repository."""
    repo = tmp_path_factory.mktemp("clone") / "repo"
    subprocess.run(["git", "clone", "-q", "--shared", "--no-tags", str(ROOT), str(repo)], check=True)
    git(repo, "config", "user.email", "any-dataset@example.invalid")
    git(repo, "config", "user.name", "Any Dataset")
    git(repo, "config", "tag.gpgsign", "false")
    return repo


def search_release_report(repo: Path, dataset: str, verify: bool) -> dict[str, str]:
    done = command(repo, "run.py", "--dataset", dataset, *SEARCH)
    assert done.returncode == 0, done.stderr[-2000:]
    search_id = done.stdout.split("search_id: ")[1].split()[0]
    assert f"python search/release.py --search-id {search_id}" in done.stdout  # the last lines say what next
    release = command(repo, "release.py")
    assert release.returncode == 0, release.stderr[-2000:]
    experiment = contract.experiment_name(dataset)
    assert f"releasing from experiment {experiment!r}" in release.stdout and f"search {search_id}:" in release.stdout
    report = command(repo, "report.py")
    assert report.returncode == 0, report.stderr[-2000:]
    assert f"report of search {search_id} (experiment {experiment!r})" in report.stdout
    if verify:  # of the latest search's model, with no flag: the second dataset's, not the first's
        verified = command(repo, "release.py", "--verify")
        assert verified.returncode == 0 and "verify OK" in verified.stdout, verified.stdout + verified.stderr
        assert contract.model_name(experiment) in verified.stdout
    return {"search_id": search_id, "model": contract.model_name(experiment)}


def test_iris_then_wine_keep_their_cards_reports_and_tags(clone):
    iris = search_release_report(clone, "iris", verify=False)
    wine = search_release_report(clone, "wine", verify=True)
    assert (iris["model"], wine["model"]) == ("iris_classification_best_model", "wine_classification_best_model")
    for done in (iris, wine):
        card = json.loads((clone / "releases" / done["model"] / "v1" / "model_card.json").read_text())
        assert card["model_name"] == done["model"] and card["lineage"]["search_id"] == done["search_id"]
        assert card["git_tag"] == f"{done['model']}-v1"
        tag_message = git(clone, "tag", "-l", "--format=%(contents)", f"{done['model']}-v1")
        assert tag_message.startswith(f"{done['model']} version 1")
        assert (clone / "reports" / done["search_id"] / "experiment_report.md").is_file()
    assert sorted(git(clone, "tag", "-l").split()) == [f"{iris['model']}-v1", f"{wine['model']}-v1"]
    wine_card = json.loads((clone / "releases" / wine["model"] / "v1" / "model_card.json").read_text())
    assert wine_card["lineage"]["dataset"] == "wine"
