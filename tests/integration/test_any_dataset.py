"""Any dataset end to end, as a new user runs it: a clone with only the requirements installed (not the project),
MLflow's default `sqlite:///mlflow.db`, no flags after the search.

The interpreter sees the test venv's packages through a plain path entry, which does not run their `.pth` hooks, so
the project's editable install is invisible: only the entrypoints' own path shim puts the clone on the path. Iris
and then wine are searched and released in the clone, and the latest reported and verified: each command acts on
the latest search and says which; both model cards and two distinct git tags stay, each on its own model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from search.common import contract

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SEARCH = ["--num-samples", "2", "--models", "knn,logistic_regression", "--feature-sets", "basic", "--cv-folds", "2"]


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory) -> Path:
    """A venv holding nothing but a path to the test venv's site-packages."""
    home = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(home)], check=True)
    site = next(home.glob("lib/python*/site-packages"))
    (site / "requirements.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return home / "bin" / "python"


def run(python: Path, cwd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "PYTHONPATH")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    return subprocess.run([str(python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


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


def search_release_report(python: Path, repo: Path, dataset: str, latest: bool) -> dict[str, str]:
    done = run(python, repo, "search/run.py", "--dataset", dataset, *SEARCH)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b[" not in done.stdout + done.stderr  # no colour codes when the output is not a terminal
    search_id = done.stdout.split("search_id: ")[1].split()[0]
    assert f"python search/release.py --search-id {search_id}" in done.stdout  # the last lines say what next
    release = run(python, repo, "search/release.py")
    assert release.returncode == 0, release.stderr[-2000:]
    experiment = contract.experiment_name(dataset)
    assert f"releasing from experiment {experiment!r}" in release.stdout and f"search {search_id}:" in release.stdout
    if latest:  # the report and the check of the latest search's model, with no flag: the second dataset's
        report = run(python, repo, "search/report.py")
        assert report.returncode == 0, report.stderr[-2000:]
        assert f"report of search {search_id} (experiment {experiment!r})" in report.stdout
        assert (repo / "reports" / search_id / "experiment_report.md").is_file()
        verified = run(python, repo, "search/release.py", "--verify")
        assert verified.returncode == 0 and "verify OK" in verified.stdout, verified.stdout + verified.stderr
        assert contract.model_name(experiment) in verified.stdout
    return {"search_id": search_id, "model": contract.model_name(experiment)}


def test_the_bare_venv_has_the_requirements_but_not_the_project(bare_python, tmp_path):
    found = run(bare_python, tmp_path, "-c", "import mlflow, optuna, ray, sklearn; import search")
    assert found.returncode != 0 and "No module named 'search'" in found.stderr, found.stderr[-500:]


def test_iris_then_wine_keep_their_cards_and_tags(bare_python, clone):
    iris = search_release_report(bare_python, clone, "iris", latest=False)
    wine = search_release_report(bare_python, clone, "wine", latest=True)
    assert (iris["model"], wine["model"]) == ("iris_classification_best_model", "wine_classification_best_model")
    for done in (iris, wine):
        card = json.loads((clone / "releases" / done["model"] / "v1" / "model_card.json").read_text())
        assert card["model_name"] == done["model"] and card["lineage"]["search_id"] == done["search_id"]
        assert card["git_tag"] == f"{done['model']}-v1"
        tag_message = git(clone, "tag", "-l", "--format=%(contents)", f"{done['model']}-v1")
        assert tag_message.startswith(f"{done['model']} version 1")
    assert sorted(git(clone, "tag", "-l").split()) == [f"{iris['model']}-v1", f"{wine['model']}-v1"]
    wine_card = json.loads((clone / "releases" / wine["model"] / "v1" / "model_card.json").read_text())
    assert wine_card["lineage"]["dataset"] == "wine"


def test_the_cluster_commands_start_without_installing_the_project(bare_python, tmp_path):
    for script in ("cluster/local.py", "cluster/mlflow_server.py", "cluster/study_dashboard.py"):
        helped = run(bare_python, tmp_path, str(ROOT / script), "--help", timeout=120)
        assert helped.returncode == 0 and "usage" in helped.stdout, (script, helped.stderr[-500:])
