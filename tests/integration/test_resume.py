"""Ctrl-C in the middle of a search, then `--resume`: nothing lost, nothing duplicated, the same parent run."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

pytestmark = pytest.mark.integration
RUN = str(Path(__file__).resolve().parents[2] / "search" / "run.py")


def trial_runs(client: MlflowClient, search_id: str):
    experiment = client.get_experiment_by_name("it-resume")
    if experiment is None:
        return []
    query = f"tags.search_id = '{search_id}' and tags.run_type = 'trial'"
    return client.search_runs([experiment.experiment_id], filter_string=query, max_results=1000)


# Enough trials that the interrupt, sent once 3 have finished, lands before the last one ends however cheap they are.
TRIALS = 20


@pytest.mark.fault("SIGINT to the driver mid-search, then --resume")
def test_interrupted_search_resumes_without_loss_or_duplicates(mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    argv = [sys.executable, RUN, "--tracking-uri", mlflow_server, "--experiment", "it-resume"]
    argv += ["--num-samples", str(TRIALS), "--max-concurrent", "1", "--models", "knn,logistic_regression,svm"]
    argv += ["--storage-path", str(tmp_path)]
    driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        first = driver.stdout.readline()
        assert first.startswith("search "), first
        search_id = first.split()[1].rstrip(":")
        deadline = time.monotonic() + 120
        while sum(r.info.status == "FINISHED" for r in trial_runs(client, search_id)) < 3:
            assert time.monotonic() < deadline and driver.poll() is None, "the search did not get going"
            time.sleep(0.5)
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 130 and f"--resume {search_id}" in err
    before = trial_runs(client, search_id)
    parent = client.search_runs(
        [before[0].info.experiment_id], filter_string=f"tags.search_id = '{search_id}' and tags.run_type = 'search'"
    )
    assert len(parent) == 1 and parent[0].info.status == "KILLED"
    assert all(r.info.status in ("FINISHED", "KILLED") for r in before) and len(before) < TRIALS
    finished_before = {r.info.run_id: r.info.end_time for r in before if r.info.status == "FINISHED"}

    resumed = subprocess.run(
        [sys.executable, RUN, "--tracking-uri", mlflow_server, "--resume", search_id, "--storage-path", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    after = trial_runs(client, search_id)
    indices = Counter(int(r.data.tags["trial_index"]) for r in after)
    assert sorted(indices) == list(range(TRIALS)) and set(indices.values()) == {1}
    assert all(r.info.status == "FINISHED" and r.data.tags["outcome"] == "completed" for r in after)
    assert set(finished_before) <= {r.info.run_id for r in after}
    for run in after:  # finished trials were not rerun: their runs were not touched again
        if run.info.run_id in finished_before:
            assert run.info.end_time == finished_before[run.info.run_id]
    again = client.get_run(parent[0].info.run_id)
    assert again.info.status == "FINISHED" and again.data.metrics["trials_finished"] == TRIALS
    assert again.data.tags["resumed"] == "true"
