"""The entrypoints from a clone with the requirements installed and the project itself not installed.

A fresh interpreter environment sees the test venv's packages through a plain path entry, which does not run their
`.pth` hooks, so the project's editable install is invisible: only `pip install -r requirements.txt` is left.
The commands run from outside the clone, as `python <clone>/search/run.py`, so nothing but their own path shim can
put the project on the path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


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


def test_the_bare_venv_has_the_requirements_but_not_the_project(bare_python, tmp_path):
    found = run(bare_python, tmp_path, "-c", "import mlflow, optuna, ray, sklearn; import search")
    assert found.returncode != 0 and "No module named 'search'" in found.stderr, found.stderr[-500:]


def test_search_report_and_release_run_without_installing_the_project(bare_python, tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    where = ["--tracking-uri", uri]
    search = ["--num-samples", "1", "--models", "logistic_regression", "--feature-sets", "basic", "--cv-folds", "2"]
    search += ["--storage-path", str(tmp_path / "rr")]
    done = run(bare_python, tmp_path, str(ROOT / "search" / "run.py"), *where, *search)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "\x1b[" not in done.stdout + done.stderr  # no colour codes when the output is not a terminal
    report = run(bare_python, tmp_path, str(ROOT / "search" / "report.py"), *where, "--out", str(tmp_path / "rep"))
    assert report.returncode == 0, report.stderr[-2000:]
    assert list((tmp_path / "rep").glob("*.md")), report.stdout
    release = run(bare_python, tmp_path, str(ROOT / "search" / "release.py"), *where, "--no-tag", "--out",
                  str(tmp_path / "releases"))  # fmt: skip
    assert release.returncode == 0, release.stderr[-2000:]
    assert list((tmp_path / "releases").glob("*/v1/model_card.json")), release.stdout
    for script in ("cluster/local.py", "cluster/mlflow_server.py", "cluster/study_dashboard.py"):
        helped = run(bare_python, tmp_path, str(ROOT / script), "--help", timeout=120)
        assert helped.returncode == 0 and "usage" in helped.stdout, (script, helped.stderr[-500:])
