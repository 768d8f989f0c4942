"""Several users at once on one compose cluster: three drivers (`docker compose exec ray-head python search/run.py`)
started together, into one experiment; each search ends with every trial in its own parent run, none lost,
duplicated or crossed into another search. And `--resume` on compose: a driver interrupted mid-search, resumed
from the head's own Tune storage, ends with every trial once."""

from __future__ import annotations

import time
from collections import Counter

import pytest
from cluster_harness import SEARCH_LINE

pytestmark = pytest.mark.compose
SEARCHES, SAMPLES = 3, 6


def test_three_searches_at_once_each_keep_their_own_trials(cluster):
    experiment = "compose_three_users"  # new: the three drivers race to create it, and all three must go on
    drivers = [cluster.project.popen(*cluster.search_argv(experiment, SAMPLES, "--seed", str(s))) for s in range(3)]
    outputs = []
    for driver in drivers:
        out, err = driver.communicate(timeout=1200)
        assert driver.returncode == 0, f"a driver failed:\n{out[-2000:]}\n{err[-2000:]}"
        outputs.append(out)
    searches = [SEARCH_LINE.search(out) for out in outputs]
    assert all(searches)
    search_ids = {found[1] for found in searches}
    assert len(search_ids) == SEARCHES

    client = cluster.mlflow_client()
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([experiment_id], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("run_type") == "search"]
    trials = [r for r in runs if r.data.tags.get("run_type") == "trial"]
    assert sorted(p.data.tags["search_id"] for p in parents) == sorted(search_ids)
    assert len(trials) == SEARCHES * SAMPLES, f"{len(trials)} trial runs for {SEARCHES} x {SAMPLES}"
    parent_of = {p.info.run_id: p.data.tags["search_id"] for p in parents}
    for found in searches:
        search_id, parent_id = found[1], found[3]
        assert parent_of[parent_id] == search_id
        own = [t for t in trials if t.data.tags["mlflow.parentRunId"] == parent_id]
        assert {t.data.tags["search_id"] for t in own} == {search_id}, "a trial crossed into another search"
        assert sorted(int(t.data.tags["trial_index"]) for t in own) == list(range(SAMPLES))
        assert all(t.info.status == "FINISHED" and "val_accuracy" in t.data.metrics for t in own)
        assert Counter(t.data.tags["trial_id"] for t in own).most_common(1)[0][1] == 1, "a trial tracked twice"


@pytest.mark.fault("compose: SIGINT to the driver in the head mid-search, then --resume")
def test_an_interrupted_search_resumes_on_compose(cluster):
    experiment, samples = "compose_resume", 8
    pid_file = "/tmp/driver-resume.pid"
    argv = cluster.search_argv(experiment, samples, "--max-concurrent", "1")
    shell = f"echo $$ > {pid_file} && exec " + " ".join(argv[3:])  # the driver's PID in the head, to signal it
    driver = cluster.project.popen("exec", "-T", "ray-head", "sh", "-c", shell)
    try:
        first = driver.stdout.readline()
        found = SEARCH_LINE.search(first)
        assert found, first
        search_id = found[1]
        deadline = time.monotonic() + 300
        while sum(t.info.status == "FINISHED" for t in cluster.trials(experiment, search_id)) < 2:
            assert time.monotonic() < deadline and driver.poll() is None, "the search did not get going"
            time.sleep(1)
        cluster.project.run("exec", "-T", "ray-head", "sh", "-c", f"kill -INT $(cat {pid_file})", check=True)
        _, err = driver.communicate(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
    before = cluster.trials(experiment, search_id)
    client = cluster.mlflow_client()
    parent = client.search_runs(
        [before[0].info.experiment_id], f"tags.search_id = '{search_id}' and tags.run_type = 'search'"
    )
    assert len(parent) == 1 and parent[0].info.status == "KILLED", f"exit {driver.returncode}\n{err[-2000:]}"
    assert len([t for t in before if t.info.status == "FINISHED"]) < samples

    resumed = cluster.project.run("exec", "-T", "ray-head", "python", "search/run.py", "--resume", search_id)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = cluster.trials(experiment, search_id)
    indices = Counter(int(t.data.tags["trial_index"]) for t in after)
    assert sorted(indices) == list(range(samples)) and set(indices.values()) == {1}, indices
    assert all(t.info.status == "FINISHED" for t in after)
    finished_before = {t.info.run_id for t in before if t.info.status == "FINISHED"}
    assert finished_before <= {t.info.run_id for t in after}, "a finished trial was tracked again"
