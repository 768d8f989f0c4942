"""Faults on the compose cluster, mid-search: a ray-worker container killed (`docker kill`, what
`docker compose kill` does to each container), `docker compose restart mlflow`, and PostgreSQL stopped for a
short while. Each search still ends with every trial asked for, tracked once with its metrics. The cluster is put
back as it was after each (the other compose tests share it)."""

from __future__ import annotations

import subprocess
import time
from collections import Counter

import pytest
from cluster_harness import SEARCH_LINE, WORKERS, tail

pytestmark = pytest.mark.compose


def start_search(cluster, experiment: str, samples: int) -> tuple[subprocess.Popen, str]:
    """A search in the head, in the background, once it has finished two trials; (driver, search id)."""
    driver = cluster.project.popen(*cluster.search_argv(experiment, samples, "--max-concurrent", "2"))
    first = driver.stdout.readline()
    found = SEARCH_LINE.search(first)
    assert found, first + driver.stderr.read()[-2000:] if driver.poll() is not None else first
    deadline = time.monotonic() + 300
    while sum(t.info.status == "FINISHED" for t in cluster.trials(experiment, found[1])) < 2:
        assert time.monotonic() < deadline and driver.poll() is None, "the search did not get going"
        time.sleep(1)
    return driver, found[1]


def finish(cluster, driver: subprocess.Popen, experiment: str, search_id: str, samples: int) -> list:
    """Wait for the driver; the search's trials, checked complete: each index once, FINISHED, with metrics."""
    try:
        out, err = driver.communicate(timeout=900)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, f"the search failed:\n{out[-2000:]}\n{err[-2000:]}"
    trials = cluster.trials(experiment, search_id)
    indices = Counter(int(t.data.tags["trial_index"]) for t in trials)
    assert sorted(indices) == list(range(samples)) and set(indices.values()) == {1}, indices
    for trial in trials:
        assert trial.info.status == "FINISHED" and trial.data.tags["outcome"] == "completed"
        assert {"val_accuracy", "val_f1", "fit_time_s"} <= set(trial.data.metrics)
    return trials


@pytest.mark.fault("compose: one ray-worker container killed mid-search")
def test_search_survives_a_killed_worker_container(cluster):
    experiment, samples = "compose_worker_killed", 10
    driver, search_id = start_search(cluster, experiment, samples)
    try:
        # A worker that has run trials of this search (a container's hostname is its ID's first 12 characters).
        ran = cluster.trials(experiment, search_id)
        victim = sorted({t.data.tags["hostname"] for t in ran if "hostname" in t.data.tags})[0]
        killed = subprocess.run(["docker", "kill", victim], env=cluster.project.env, capture_output=True, text=True)
        assert killed.returncode == 0, tail(killed)
        finish(cluster, driver, experiment, search_id, samples)
    finally:
        cluster.project.run("up", "-d", "--scale", f"ray-worker={WORKERS}", timeout=600, check=True)
        cluster.wait_for_nodes(WORKERS + 1)


@pytest.mark.fault("compose: `docker compose restart mlflow` mid-search")
def test_search_survives_an_mlflow_restart(cluster):
    experiment, samples = "compose_mlflow_restart", 8
    driver, search_id = start_search(cluster, experiment, samples)
    restarted = cluster.project.run("restart", "mlflow", timeout=300)
    assert restarted.returncode == 0, tail(restarted)
    finish(cluster, driver, experiment, search_id, samples)


@pytest.mark.fault("compose: PostgreSQL stopped for 15 s mid-search")
def test_search_survives_a_short_postgres_stop(cluster):
    experiment, samples = "compose_postgres_stop", 8
    driver, search_id = start_search(cluster, experiment, samples)
    try:
        cluster.project.run("stop", "postgres", timeout=120, check=True)
        time.sleep(15)
    finally:
        cluster.project.run("start", "postgres", timeout=120, check=True)
    finish(cluster, driver, experiment, search_id, samples)
