"""The tracking server goes away mid-search and comes back: no trial's results are lost or duplicated."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster.private_mlflow import start_mlflow
from cluster.processes import free_port, stop_process_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def start_server(port: int, data_dir: Path) -> subprocess.Popen:
    return start_mlflow(data_dir, port)[0]


@pytest.mark.fault("mlflow server killed mid-search, back 10 s later")
def test_search_survives_a_tracking_server_restart(tmp_path):
    port, data_dir = free_port(), tmp_path / "server"
    uri = f"http://127.0.0.1:{port}"
    server = start_server(port, data_dir)
    argv = [sys.executable, str(ROOT / "search/run.py"), "--tracking-uri", uri, "--experiment", "it-outage"]
    argv += ["--num-samples", "14", "--max-concurrent", "1", "--models", "knn,logistic_regression,svm"]
    argv += ["--storage-path", str(tmp_path / "ray_results")]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        search_id = driver.stdout.readline().split()[1].rstrip(":")
        client = MlflowClient(uri)
        experiment_id = client.get_experiment_by_name("it-outage").experiment_id
        query = f"tags.search_id = '{search_id}' and tags.run_type = 'trial' and attributes.status = 'FINISHED'"
        deadline = time.monotonic() + 120
        while len(client.search_runs([experiment_id], query)) < 2:
            assert time.monotonic() < deadline and driver.poll() is None, "the search did not get going"
            time.sleep(0.3)
        stop_process_group(server.pid)  # the server goes away mid-search ...
        time.sleep(10)
        server = start_server(port, data_dir)  # ... and comes back on the same port with the same data
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err[-2000:]
        runs = client.search_runs([experiment_id], f"tags.search_id = '{search_id}'", max_results=1000)
        trials = [r for r in runs if r.data.tags["run_type"] == "trial"]
        assert Counter(int(r.data.tags["trial_index"]) for r in trials) == Counter(range(14))
        assert all(r.info.status == "FINISHED" and "val_accuracy" in r.data.metrics for r in trials)
        assert all(len(json.loads(r.data.tags["confusion_matrix"])) == 3 for r in trials)  # the numbers, on every run
        parent = next(r for r in runs if r.data.tags["run_type"] == "search")
        assert parent.info.status == "FINISHED" and parent.data.metrics["trials_finished"] == 14
    finally:
        if driver.poll() is None:
            driver.kill()
        stop_process_group(server.pid)
