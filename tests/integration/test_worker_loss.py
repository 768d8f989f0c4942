"""A Ray worker node dies (SIGKILL) mid-search on `cluster/local.py`: the search still ends with every trial
completed, the lost attempt is on its trial's run, and no run is FINISHED without its metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster.processes import free_port, group_members, processes_mentioning

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def local(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    command = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)


def kill_node(state: dict, name: str) -> int:
    """SIGKILL every process of one node: its `ray start`, its raylet, its workers. Returns how many."""
    leader = next(p["pid"] for p in state["processes"] if p["name"] == name)
    node_dir = os.path.join(state["ray_temp_root"], name.removeprefix("ray-"))
    pids = set(group_members(leader)) | set(processes_mentioning(node_dir))
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return len(pids)


@pytest.mark.fault("a Ray worker node SIGKILLed mid-search")
def test_search_survives_a_lost_worker_node(tmp_path):
    state_dir = tmp_path / "cluster"
    ports = [f"--{n}-port" for n in ("mlflow", "ray", "dashboard", "ray-client")]
    flags = [x for p in ports for x in (p, str(free_port()))]
    up = local(state_dir, "up", "--workers", "2", "--cpus-per-worker", "1", *flags)
    assert up.returncode == 0, up.stderr
    driver = None
    try:
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", up.stdout, re.M))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))} | exports
        argv = [sys.executable, str(ROOT / "search/run.py"), "--experiment", "it-worker-loss", "--dataset", "digits"]
        argv += ["--models", "random_forest,svm", "--num-samples", "8", "--max-concurrent", "2", "--cv-folds", "3"]
        argv += ["--storage-path", str(tmp_path / "ray_results")]
        driver = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        search_id = driver.stdout.readline().split()[1].rstrip(":")
        client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
        experiment_id = client.get_experiment_by_name("it-worker-loss").experiment_id
        query = f"tags.search_id = '{search_id}' and tags.run_type = 'trial'"
        deadline = time.monotonic() + 180
        while sum(r.info.status == "FINISHED" for r in client.search_runs([experiment_id], query)) < 2:
            assert time.monotonic() < deadline and driver.poll() is None, "the search did not get going"
            time.sleep(0.3)
        state = json.loads((state_dir / "state.json").read_text())
        assert kill_node(state, "ray-worker-1") > 0
        _, err = driver.communicate(timeout=600)
        assert driver.returncode == 0, err[-3000:]
        trials = client.search_runs([experiment_id], query, max_results=100)
        assert sorted(int(r.data.tags["trial_index"]) for r in trials) == list(range(8))
        for run in trials:
            assert run.info.status == "FINISHED" and run.data.tags["outcome"] == "completed"
            assert {"val_accuracy", "val_f1", "fit_time_s"} <= set(run.data.metrics)
        assert any(int(r.data.tags.get("lost_attempts", 0)) >= 1 for r in trials), "no attempt was lost"
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        down = local(state_dir, "down")
        assert down.returncode == 0, down.stderr
