"""`cluster/local.py`: an MLflow server, a Ray head and two Ray worker nodes as local processes; a real search
through RAY_ADDRESS and MLFLOW_TRACKING_URI lands on both workers and is tracked with its artifacts; `down`
leaves no process behind; a taken port is refused before anything starts."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster.local import live_pids
from cluster.processes import free_port, process_alive, stop_processes

ROOT = Path(__file__).resolve().parents[2]
LOCAL = [sys.executable, str(ROOT / "cluster" / "local.py")]


def clean_env() -> dict[str, str]:
    """The test's environment without a developer's cluster settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def local(state_dir: Path, command: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python cluster/local.py <command> --state-dir <state_dir> <args>`."""
    return subprocess.run(
        [*LOCAL, command, "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=state_dir.parent,
    )


def dashboard_get(url: str, token: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.load(response)


def test_ray_node_refuses_to_start_without_a_token():
    env = {k: v for k, v in clean_env().items() if k not in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "cluster" / "ray_node.py"), "head", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode != 0
    assert "no Ray token" in result.stderr and "Traceback" not in result.stderr


def test_ray_node_gives_each_node_its_resources():
    env = {**clean_env(), "RAY_AUTH_TOKEN": "x" * 64}
    result = subprocess.run(
        [sys.executable, str(ROOT / "cluster" / "ray_node.py"), "worker", "--address", "ray-head:6379"]
        + ["--num-cpus", "1", "--memory", "2g", "--object-store-memory", "256m", "--dry-run"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    assert command[1:3] == ["start", "--block"] and "--head" not in command
    for flag, value in {"--address": "ray-head:6379", "--num-cpus": "1", "--memory": str(2 * 2**30)}.items():
        assert command[command.index(flag) + 1] == value
    assert command[command.index("--object-store-memory") + 1] == str(256 * 2**20)


@pytest.mark.integration
def test_taken_port_is_refused_before_anything_starts(tmp_path):
    state_dir = tmp_path / "state"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = local(
            state_dir,
            "up",
            "--mlflow-port",
            str(free_port()),
            "--ray-port",
            str(free_port()),
            "--dashboard-port",
            str(port),
            "--ray-client-port",
            str(free_port()),
            timeout=60,
        )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"port {port}" in lines[0] and "--dashboard-port" in lines[0], result.stderr
    assert not (state_dir / "state.json").exists(), "nothing may be started or recorded"


@pytest.mark.integration
def test_local_cluster_runs_a_search_on_two_workers_and_stops_cleanly(tmp_path):
    state_dir = tmp_path / "state"
    ports = {name: free_port() for name in ("mlflow", "ray", "dashboard", "ray-client")}
    flags = [f"--{name}-port={port}" for name, port in ports.items()]
    up = local(state_dir, "up", "--workers", "2", "--cpus-per-worker", "1", "--head-cpus", "0", *flags)
    state_path = state_dir / "state.json"
    state = json.loads(state_path.read_text()) if state_path.exists() else None
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", up.stdout, re.M))
        assert exports["RAY_ADDRESS"] == f"127.0.0.1:{ports['ray']}"
        assert exports["MLFLOW_TRACKING_URI"] == f"http://127.0.0.1:{ports['mlflow']}"
        assert exports["RAY_AUTH_MODE"] == "token"
        token_path = Path(exports["RAY_AUTH_TOKEN_PATH"])
        token = token_path.read_text().strip()
        assert token_path.stat().st_mode & 0o077 == 0, "the token file must be private"
        assert token_path.parent == state_dir.resolve()

        status = local(state_dir, "status", timeout=60)
        assert status.returncode == 0 and "3 of 3" in status.stdout, status.stdout + status.stderr
        again = local(state_dir, "up", timeout=60)
        assert again.returncode != 0 and "already up" in again.stderr

        # The dashboard asks for the token; with it, it lists a head without CPUs and two workers with one each.
        dashboard = f"http://127.0.0.1:{ports['dashboard']}"
        with pytest.raises(urllib.error.HTTPError) as refused:
            dashboard_get(f"{dashboard}/api/v0/nodes", None)
        assert refused.value.code == 401
        nodes = dashboard_get(f"{dashboard}/api/v0/nodes?limit=100", token)["data"]["result"]["result"]
        alive = [n for n in nodes if n["state"] == "ALIVE"]
        heads = [n for n in alive if n["is_head_node"]]
        workers = {n["node_id"] for n in alive if not n["is_head_node"]}
        assert len(heads) == 1 and len(workers) == 2
        assert heads[0]["resources_total"].get("CPU", 0) == 0
        assert all(n["resources_total"]["CPU"] == 1 for n in alive if not n["is_head_node"])

        # A real search from the host, through the exported variables only.
        run_env = {**clean_env(), **exports}
        run = subprocess.run(
            [sys.executable, str(ROOT / "search" / "run.py"), "--num-samples", "8", "--dataset", "digits"]
            + ["--models", "random_forest,svm,logistic_regression", "--experiment", "local_cluster_test"]
            + ["--storage-path", str(tmp_path / "ray_results")],
            capture_output=True,
            text=True,
            timeout=600,
            env=run_env,
            cwd=tmp_path,
        )
        assert run.returncode == 0, f"search failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
        search_id = re.search(r"^search_id: (\w+)$", run.stdout, re.M)[1]

        from mlflow.tracking import MlflowClient

        client = MlflowClient(exports["MLFLOW_TRACKING_URI"])
        experiment = client.get_experiment_by_name("local_cluster_test")
        trials = client.search_runs(
            [experiment.experiment_id], f"tags.search_id = '{search_id}' and tags.run_type = 'trial'"
        )
        assert len(trials) == 8 and all(t.info.status == "FINISHED" for t in trials)
        used = {t.data.tags["node"] for t in trials}
        assert used <= workers, "trials must run on worker nodes, not on the head"
        assert len(used) >= 2, f"all trials ran on one node: {used}"

        # The figures (the best trial of each model family) went through the server into its artifact store.
        store = state_dir / "mlflow" / "artifacts"
        drawn = [t for t in trials if client.list_artifacts(t.info.run_id)]
        assert drawn and all("confusion_matrix" in t.data.tags for t in trials)
        for trial in drawn:
            assert [a.path for a in client.list_artifacts(trial.info.run_id)] == ["confusion_matrix.png"]
            stored = store / experiment.experiment_id / trial.info.run_id / "artifacts" / "confusion_matrix.png"
            assert stored.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", stored

        # The dashboard agrees: the trial actors ran on the workers, none on the head.
        actors = dashboard_get(f"{dashboard}/api/v0/actors?limit=1000&detail=1", token)["data"]["result"]["result"]
        trial_nodes = {a["node_id"] for a in actors if a["class_name"] == "ImplicitFunc"}
        assert used <= trial_nodes <= workers

        # `down` stops every process of the cluster and nothing else.
        pids = live_pids(state)  # process trees and groups, and whatever runs in its Ray temp dir
        assert len(pids) >= 8, pids
        down = local(state_dir, "down", timeout=120)
        assert down.returncode == 0, down.stderr
        assert not [p for p in pids if process_alive(p)], "processes of the cluster outlived `down`"
        assert not token_path.exists() and not state_path.exists()
        assert not Path(state["ray_temp_root"]).exists()
    finally:
        if state_path.exists():  # something failed before `down`: stop what is left, by PID
            local(state_dir, "down", timeout=120)
        if state_path.exists():
            state = json.loads(state_path.read_text())
            stop_processes([p["pid"] for p in state["processes"]], live_pids(state))
