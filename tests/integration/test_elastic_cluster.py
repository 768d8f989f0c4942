"""A cluster that breathes under a running search, on `cluster/local.py` (a head and two one-CPU workers): a worker
drained away mid-search (`remove-worker`) costs no trial and no `max_failures`; two workers added to the search,
then running on one (`add-worker`), get trials within 15 s of joining. One search sees both, as a cluster's
operator would do them."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from cluster_helpers import LOCAL, clean_env, dashboard_get, local, search_id_of, start_driver, wait_until
from mlflow.tracking import MlflowClient

from search.common import contract as c

pytestmark = pytest.mark.integration
TRIALS = 20
SEARCH = ["--dataset", "digits", "--models", "random_forest,svm", "--scheduler", "asha", "--cv-folds", "4"]


def trial_runs(client: MlflowClient, experiment: str, search_id: str) -> list:
    found = client.get_experiment_by_name(experiment)
    query = f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}'"
    return client.search_runs([found.experiment_id], query, max_results=1000) if found else []


def ended(client: MlflowClient, experiment: str, search_id: str) -> int:
    return sum(r.info.status != "RUNNING" for r in trial_runs(client, experiment, search_id))


def worker_node(local_cluster, number: int) -> str:
    token = Path(local_cluster["exports"]["RAY_AUTH_TOKEN_PATH"]).read_text().strip()
    url = f"http://127.0.0.1:{local_cluster['ports']['dashboard']}/api/v0/nodes?limit=100"
    nodes = dashboard_get(url, token)["data"]["result"]["result"]
    return next(n["node_id"] for n in nodes if n["state"] == "ALIVE" and n["labels"].get("worker") == str(number))


def finish(driver, client, experiment, search_id, trials: int) -> tuple[list, str]:
    """Wait for the driver; check every trial ran to an outcome, once, and none failed; the trial runs and the
    driver's output."""
    out, err = driver.communicate(timeout=600)
    assert driver.returncode == 0, err[-3000:]
    runs = trial_runs(client, experiment, search_id)
    assert sorted(int(r.data.tags[c.TRIAL_INDEX]) for r in runs) == list(range(trials))
    assert all(r.info.status == "FINISHED" and r.data.tags[c.OUTCOME] in (c.COMPLETED, c.STOPPED) for r in runs)
    return runs, out


@pytest.mark.fault("a worker node drained away mid-search (cluster/local.py remove-worker), then two added")
def test_a_drained_worker_costs_nothing_and_added_workers_get_trials_within_seconds(local_cluster, tmp_path):
    """One search sees the cluster breathe: worker 2 drained away after its first trial (none of it counts against
    `max_failures`), then workers 3 and 4 added at once, each taking trials within 15 s of joining."""
    env, state_dir = local_cluster["env"], local_cluster["state_dir"]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    argv = [*SEARCH, "--experiment", "it-elastic", "--num-samples", str(TRIALS), "--storage-path", str(tmp_path)]
    driver = start_driver(argv, env=env, cwd=tmp_path)
    joined: dict[str, float] = {}
    try:
        search_id = search_id_of(driver)
        wait_until(lambda: ended(client, "it-elastic", search_id) >= 1, "a trial's end", 180, driver)
        removed = local(state_dir, "remove-worker", "--worker", "2", "--grace", "5", timeout=120)
        assert removed.returncode == 0, removed.stderr
        assert "worker 2 draining" in removed.stdout and "worker 2 removed" in removed.stdout
        print(removed.stdout)  # idle (its trial finished) or at its deadline (its trial moved): both are fine
        adding = [subprocess.Popen([*LOCAL, "add-worker", "--state-dir", str(state_dir)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=clean_env()) for _ in range(2)]  # fmt: skip
        for added in adding:  # both at once: each waits for its node, then says its number
            out, err = added.communicate(timeout=150)
            number = int(re.search(r"worker (\d+) joined", out)[1]) if added.returncode == 0 else 0
            assert number in (3, 4), err
            joined[worker_node(local_cluster, number)] = time.time()
        runs, out = finish(driver, client, "it-elastic", search_id, TRIALS)
    finally:
        if driver.poll() is None:
            driver.kill()
    for run in runs:  # a trial that moved off the drained node: its attempt lost, none counted against max_failures
        if c.LOST_ATTEMPTS in run.data.tags:
            assert run.data.tags[c.FAILURES_COUNTED] == "0", run.data.tags
    for node, at in joined.items():
        starts = [r.info.start_time / 1000 for r in runs if r.data.tags.get(c.NODE) == node]
        assert starts, f"no trial ran on the node that joined at {at}:\n{out[-3000:]}"
        assert min(starts) - at <= 15, f"the first trial on a new node started {min(starts) - at:.1f} s after it joined"
    parent = client.search_runs(
        [runs[0].info.experiment_id], f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}'"
    )[0]
    used = {r.data.tags[c.NODE] for r in runs if c.NODE in r.data.tags}  # a node that re-registers counts anew
    assert set(joined) <= used and len(used) >= 3, used
    assert parent.data.metrics[c.NODES_USED] == len(used) and f"on {len(used)} nodes" in out
    status = local(state_dir, "status", timeout=60)
    assert status.returncode == 0 and "4 of 4" in status.stdout, status.stdout
