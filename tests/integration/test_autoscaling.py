"""Autoscaling on Ray's own autoscaler, on this machine: a head started with Ray's fake multi-node provider
(`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config ...`: the real autoscaler, launching worker nodes as
local processes) and no worker node. A search's pending trials make the autoscaler add worker nodes; they are
removed once the search has ended and they sit idle.

`ray.cluster_utils.AutoscalingCluster` does the same but runs a machine-wide `ray stop --force` and reads an
example config the wheel does not ship, so the head is started here, on free ports, in a temp dir of its own, and
stopped by PID."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from cluster_helpers import clean_env, wait_until
from mlflow.tracking import MlflowClient

from cluster.local_steps import alive_nodes
from cluster.processes import free_port, processes_mentioning, stop_processes
from search.common import contract as c

pytestmark = [pytest.mark.integration, pytest.mark.chaos]  # a cluster that grows and shrinks: the chaos tier
ROOT = Path(__file__).resolve().parents[2]
MAX_WORKERS = 3


def fake_cluster_config(gcs_address: str) -> dict:
    """The autoscaler's cluster config for the fake multi-node provider: a head of 0 CPUs and up to MAX_WORKERS
    one-CPU workers, none to start with, removed after 6 s idle (`deploy/kuberay/raycluster.yaml` sets the same
    for KubeRay's in-tree autoscaler)."""
    return {
        "cluster_name": "fake-autoscaling",
        "max_workers": MAX_WORKERS,
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": 0.1,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs_address},  # fmt: skip
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            "ray.worker.cpu": {"resources": {"CPU": 1, "object_store_memory": 200 * 2**20}, "node_config": {},
                               "min_workers": 0, "max_workers": MAX_WORKERS},  # fmt: skip
        },
        "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }  # fmt: skip


@pytest.fixture
def autoscaling_head(tmp_path):
    """A Ray head with the fake multi-node autoscaler and no worker; yields its address and environment."""
    temp_dir = tempfile.mkdtemp(prefix="ray-as-", dir="/tmp")
    token = tmp_path / "token"
    token.write_text(secrets.token_hex(32))
    port = free_port()
    address = f"127.0.0.1:{port}"
    config = tmp_path / "autoscaling.json"
    env = {**clean_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    config.write_text(json.dumps(fake_cluster_config(address)))
    ray = shutil.which("ray", path=str(Path(sys.executable).parent))
    command = [ray, "start", "--head", "--block", "--port", str(port), "--num-cpus", "0", "--temp-dir", temp_dir]
    dashboard = free_port()
    command += ["--autoscaling-config", str(config), "--disable-usage-stats", "--dashboard-host", "127.0.0.1"]
    command += ["--dashboard-port", str(dashboard), "--dashboard-agent-listen-port", str(free_port())]
    command += ["--object-store-memory", str(200 * 2**20), "--min-worker-port", "0", "--max-worker-port", "0"]
    head_env = {**env, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    head_env |= {"RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "AUTOSCALER_METRIC_PORT": str(free_port()),
                 "DASHBOARD_METRIC_PORT": str(free_port())}  # fmt: skip
    with open(tmp_path / "head.log", "wb") as log:
        head = subprocess.Popen(command, env=head_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{dashboard}"
        wait_until(lambda: alive_nodes(url, token.read_text()), "the head", 90)
        yield {"env": {**env, "RAY_ADDRESS": address}, "log": tmp_path / "head.log", "dashboard": url,
               "token": token.read_text()}  # fmt: skip
    finally:
        stop_processes([head.pid], processes_mentioning(temp_dir), timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


def workers(head: dict) -> int:
    """Alive worker nodes (nodes with CPUs) the dashboard lists."""
    return sum(1 for n in alive_nodes(head["dashboard"], head["token"]) if n["resources_total"].get("CPU"))


def test_the_autoscaler_grows_the_cluster_to_a_search_and_shrinks_it_after(autoscaling_head, mlflow_server, tmp_path):
    env = autoscaling_head["env"]
    assert workers(autoscaling_head) == 0, "the cluster starts with no worker node"
    argv = [sys.executable, str(ROOT / "search" / "run.py"), "--tracking-uri", mlflow_server, "--num-samples", "8"]
    argv += ["--experiment", "it-autoscaling", "--max-concurrent", str(MAX_WORKERS), "--dataset", "digits"]
    argv += ["--models", "random_forest,svm", "--cv-folds", "3", "--storage-path", str(tmp_path / "ray_results")]
    driver = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    most = 0
    try:
        while driver.poll() is None:  # the trials ask for CPUs the cluster lacks: the autoscaler adds nodes
            most = max(most, workers(autoscaling_head))
            time.sleep(0.5)
        out, err = driver.communicate()
        assert driver.returncode == 0, err[-3000:] + autoscaling_head["log"].read_text()[-2000:]
    finally:
        if driver.poll() is None:
            driver.kill()
    assert most >= 2, f"the autoscaler added {most} worker node(s) for {MAX_WORKERS} trials at once"
    search_id = re.search(r"^search_id: (\w+)$", out, re.M)[1]
    parent = MlflowClient(mlflow_server).search_runs(
        [MlflowClient(mlflow_server).get_experiment_by_name("it-autoscaling").experiment_id],
        f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}'",
    )[0]
    assert parent.data.metrics[c.TRIALS_FINISHED] == 8 and parent.data.metrics[c.NODES_USED] >= 2
    wait_until(lambda: workers(autoscaling_head) == 0, "idle worker nodes removed", 120)  # idle 6 s, then terminated
