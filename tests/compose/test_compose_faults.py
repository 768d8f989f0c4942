"""Faults on the compose cluster, mid-search: the ray-worker container running a trial that has kept folds on its
run killed (`docker kill`, what `docker compose kill` does to each container), `docker compose restart mlflow`,
PostgreSQL stopped for a short while, and the workers scaled up and then down. Each search still ends with every
trial asked for, tracked once with its metrics. The cluster is put back as it was after each (the other compose
tests share it)."""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter

import pytest
from cluster_harness import SEARCH_LINE, WORKERS, tail

from search.common import contract as c

pytestmark = pytest.mark.compose


def start_search(cluster, experiment: str, samples: int, *extra: str) -> tuple[subprocess.Popen, str]:
    """A search in the head, in the background, once it has finished two trials; (driver, search id). Two trials
    at a time unless `extra` says otherwise."""
    driver = cluster.project.popen(*cluster.search_argv(experiment, samples, *(extra or ("--max-concurrent", "2"))))
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


# A trial of a few seconds a fold on one CPU: it keeps a fold before its worker is killed.
SLOW = {"model": "gradient_boosting", "feature_set": "squared", "learning_rate": 0.01, "max_iter": 300,
        "max_leaf_nodes": 64, "l2_regularization": 1e-6}  # fmt: skip
RUNS_A_TRIAL = """import glob
found, needle = 0, b'ray::Implicit' + b'Func'  # split: this probe's own command line does not match
for path in glob.glob('/proc/[0-9]*/cmdline'):
    try:
        found += needle in open(path, 'rb').read()
    except OSError:
        pass
print(found)"""


@pytest.mark.fault("compose: the ray-worker container running a trial killed mid-search")
def test_a_killed_worker_container_costs_its_trial_only_the_fold_in_progress(cluster):
    """Workers share no storage with the head: a trial keeps its finished folds on its MLflow run (`folds_kept`).
    Its worker container is killed; the attempt on another worker takes the folds over instead of starting again,
    the lost attempt is recorded on its run (not as its failure), and the search goes on to end with every trial.
    One trial at a time, so the one running is the slow first."""
    experiment, samples, head = "compose_worker_killed", 4, ("exec", "-T", "ray-head", "python", "-c")
    cluster.project.run(*head, f"open('/tmp/slow.json', 'w').write({json.dumps(json.dumps([SLOW]))})", check=True)
    argv = cluster.search_argv(experiment, samples, "--models", "gradient_boosting,logistic_regression")
    argv += ["--feature-sets", "squared", "--max-concurrent", "1", "--points-to-evaluate", "/tmp/slow.json"]
    driver = cluster.project.popen(*argv)
    try:
        found = SEARCH_LINE.search(first := driver.stdout.readline())
        assert found, first + (driver.stderr.read()[-2000:] if driver.poll() is not None else "")
        deadline = time.monotonic() + 300
        while not any(c.FOLDS_KEPT in t.data.tags for t in cluster.trials(experiment, found[1])):
            assert time.monotonic() < deadline and driver.poll() is None, "the trial kept no fold on its run"
            time.sleep(1)

        def runs_a_trial(container: str) -> bool:
            probe = ["docker", "exec", container, "python", "-c", RUNS_A_TRIAL]
            found = subprocess.run(probe, env=cluster.project.env, capture_output=True, text=True).stdout.strip()
            return found not in ("", "0")

        busy = [name for name in cluster.project.containers("ray-worker") if runs_a_trial(name)]
        assert len(busy) == 1, busy
        killed = subprocess.run(["docker", "kill", busy[0]], env=cluster.project.env, capture_output=True, text=True)
        assert killed.returncode == 0, tail(killed)
        trials = finish(cluster, driver, experiment, found[1], samples)
        [trial] = [t for t in trials if t.data.tags[c.TRIAL_INDEX] == "0"]  # the slow point, evaluated first
        assert trial.data.tags[c.LOST_ATTEMPTS] == "1", trial.data.tags
        assert int(trial.data.tags[c.FOLDS_RESTORED]) >= 1, "the new attempt started over"
    finally:
        if driver.poll() is None:
            driver.kill()
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


@pytest.mark.fault("compose: `--scale ray-worker=5` mid-search, then `--scale ray-worker=1`")
def test_workers_scaled_up_take_trials_and_scaling_down_loses_none(cluster):
    """`docker compose up -d --scale ray-worker=5` mid-search: the new containers join and take trials (the
    search's concurrency follows the cluster's CPUs); `--scale ray-worker=1` then stops four of them (SIGTERM: Ray
    drains each node within the grace period) and the search still ends with every trial, none failed."""
    experiment, samples = "compose_scaled", 60
    before = set(cluster.project.containers("ray-worker"))
    driver, search_id = start_search(cluster, experiment, samples, "--cv-folds", "5")
    try:
        cluster.project.run("up", "-d", "--no-recreate", "--scale", "ray-worker=5", timeout=600, check=True)
        added = {name for name in cluster.project.containers("ray-worker") if name not in before}
        assert len(added) == 2, added
        cluster.wait_for_nodes(6)
        shown = ["docker", "inspect", "-f", "{{.Config.Hostname}}", *added]  # a trial's `hostname` tag
        hosts = set(subprocess.run(shown, env=cluster.project.env, capture_output=True, text=True).stdout.split())
        assert len(hosts) == 2, hosts
        ran_on = lambda runs: hosts & {t.data.tags.get("hostname") for t in runs}  # noqa: E731
        deadline = time.monotonic() + 120
        while not ran_on(cluster.trials(experiment, search_id)):
            assert time.monotonic() < deadline and driver.poll() is None, f"no trial ran on the added {hosts}"
            time.sleep(2)
        cluster.project.run("up", "-d", "--no-recreate", "--scale", "ray-worker=1", timeout=600, check=True)
        assert len(cluster.project.containers("ray-worker")) == 1
        trials = finish(cluster, driver, experiment, search_id, samples)
    finally:
        cluster.project.run("up", "-d", "--no-recreate", "--scale", f"ray-worker={WORKERS}", timeout=600, check=True)
        cluster.wait_for_nodes(WORKERS + 1)
    assert ran_on(trials)
