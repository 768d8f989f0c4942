"""MLflow's own UI, rendered by headless Chromium, shows a search as a training experiment with its data.

A real `mlflow server` holds a parent run and a few trial runs recorded through `search.common.mlflow_records`; Chromium
loads the experiment's runs page and the rendered DOM must show the training runs table, the parent run's name,
its Source (`mlflow.source.name`) and the dataset's name. A screenshot is left beside the DOM in the test's
temporary folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient

from search.common import mlflow_records as mr
from search.searching.parent_run import start_parent_run
from trainables.data import load_dataset, split_dataset

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--window-size=1600,1000",
    "--virtual-time-budget=20000",
)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium not found: .ci/run installs Debian's chromium"),
]


def _chromium(url: str, *action: str, timeout: float = 120) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        return subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *action, url],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _record_search(uri: str) -> tuple[str, str, str]:
    """An experiment with a parent run and three trial runs, as a search records them; (id, parent name, data)."""
    client = MlflowClient(uri)
    split = split_dataset(load_dataset("iris"), 0.25, 3)
    dev = mr.data_part(split.X_dev, split.y_dev, "iris-development", "training")
    test = mr.data_part(split.X_test, split.y_test, "iris-test", "testing")
    source = mr.source_tags("search/run.py", "0123456789abcdef0123456789abcdef01234567")
    search_id = uuid.uuid4().hex[:12]
    experiment_id, parent_id = start_parent_run(client, f"iris_ui_{search_id[:8]}", search_id, source, {})
    parent_name = f"search-{search_id}"
    parent = client.get_run(parent_id)
    mr.log_data(client, parent.info.run_id, [dev, test])
    times = mr.StartTimes()
    for index in range(3):
        tags = {**source, "mlflow.parentRunId": parent.info.run_id, "run_type": "trial"}
        name = f"{index:04d}-svm-basic"  # as TrialTracker opens a trial's run
        run_id = client.create_run(experiment_id, start_time=times(index), run_name=name, tags=tags).info.run_id
        client.log_metric(run_id, "val_accuracy", 0.9 + index / 100)
        client.set_terminated(run_id)
    client.set_terminated(parent.info.run_id)
    return experiment_id, parent_name, dev.name


def test_experiment_page_shows_training_runs_with_parent_and_dataset(mlflow_server, quiet_env, tmp_path):
    experiment_id, parent_name, dataset_name = _record_search(mlflow_server)
    # The runs route: MLflow 3.17.2's bare experiment route opens a fresh browser profile on the GenAI overview
    # whatever `mlflow.experimentKind` says (measured), so the training runs view is asked for by its route.
    url = f"{mlflow_server}/#/experiments/{experiment_id}/runs"

    shot = tmp_path / "experiment.png"
    taken = _chromium(url, f"--screenshot={shot}")
    assert shot.exists(), taken.stderr[-2000:]
    dom = _chromium(url, "--dump-dom").stdout
    (tmp_path / "experiment.html").write_text(dom)
    text = _visible_text(dom)

    assert "Training runs" in text, f"not the training runs view; DOM in {tmp_path / 'experiment.html'}"
    assert parent_name in text, f"parent run not rendered; DOM in {tmp_path / 'experiment.html'}"
    assert dataset_name in text, f"dataset not rendered; DOM in {tmp_path / 'experiment.html'}"
    assert "Dataset" in text and "Source" in text and "run.py" in text


def _visible_text(dom: str) -> str:
    """The rendered page's text: the DOM without scripts, styles and tags."""
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text))
