"""compose.yaml end to end, as the README tells a user: build, start a head, three workers and MLflow, run a
search in the head with `exec`, then check through the published ports that every trial is tracked with its
artifacts and that the trials ran on at least two worker containers; `down -v` always."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from compose_engine import EngineUnavailable, HealthTicker, compose_command, engine_env, is_podman

from cluster.processes import free_port, processes_mentioning, stop_pids

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 3
pytestmark = pytest.mark.compose


def dashboard_get(url: str, token: str | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.load(response)


def alive_nodes(dashboard: str, token: str) -> list[dict]:
    try:
        nodes = dashboard_get(f"{dashboard}/api/v0/nodes?limit=100", token)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError):
        return []
    return [n for n in nodes if n["state"] == "ALIVE"]


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


@pytest.fixture(scope="module")
def compose_project():
    """The compose project up with 3 workers; yields (compose runner, ports, token); `down -v` at the end."""
    try:
        env = engine_env()
        compose = compose_command(env)
    except EngineUnavailable as exc:
        pytest.skip(f"no container engine can be started: {exc}")
    project = f"tse2e{uuid.uuid4().hex[:8]}"
    token = secrets.token_hex(32)
    ports = {"mlflow": free_port(), "dashboard": free_port()}
    env.update(
        RAY_AUTH_TOKEN=token,
        MLFLOW_PORT=str(ports["mlflow"]),
        RAY_DASHBOARD_PORT=str(ports["dashboard"]),
        GIT_COMMIT=git_commit(),
    )

    def run(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*compose, "-p", project, "-f", str(ROOT / "compose.yaml"), *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    ticker = HealthTicker(project) if is_podman(env) else None
    try:
        built = run("build", timeout=1800)
        assert built.returncode == 0, f"build failed:\n{built.stdout[-3000:]}\n{built.stderr[-3000:]}"
        if ticker:
            ticker.start()
        started = run("up", "-d", "--scale", f"ray-worker={WORKERS}", timeout=600)
        assert started.returncode == 0, f"up failed:\n{started.stdout[-3000:]}\n{started.stderr[-3000:]}"
        dashboard = f"http://127.0.0.1:{ports['dashboard']}"
        deadline = time.monotonic() + 180
        while len(alive_nodes(dashboard, token)) < WORKERS + 1:
            assert time.monotonic() < deadline, f"{WORKERS} workers did not join:\n{run('logs', '--tail=50').stdout}"
            time.sleep(2)
        yield run, ports, token, env
    finally:
        if ticker:
            ticker.stop()
        run("down", "-v", "--remove-orphans", timeout=300)
        # Podman leaves the conmon of a finished `exec` waiting on its removed container: stop it, by PID.
        stop_pids([], processes_mentioning(f"-n\0{project}_"), timeout=10)


def test_search_in_compose_runs_on_several_workers_and_is_tracked(compose_project):
    run, ports, token, env = compose_project
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    tracking = f"http://127.0.0.1:{ports['mlflow']}"

    with pytest.raises(urllib.error.HTTPError) as refused:
        dashboard_get(f"{dashboard}/api/v0/nodes", None)
    assert refused.value.code == 401, "the dashboard must require the token"
    nodes = alive_nodes(dashboard, token)
    workers = {n["node_id"] for n in nodes if not n["is_head_node"]}
    assert len(workers) == WORKERS

    search = run(
        "exec",
        "-T",
        "ray-head",
        "python",
        "search/run.py",
        "--num-samples",
        "6",
        "--dataset",
        "digits",
        "--models",
        "random_forest,svm,logistic_regression",
        "--experiment",
        "compose_e2e",
        timeout=900,
    )
    assert search.returncode == 0, f"search failed:\n{search.stdout[-3000:]}\n{search.stderr[-3000:]}"
    search_id = re.search(r"^search_id: (\w+)$", search.stdout, re.M)[1]

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking)  # the MLflow REST API through the published port
    experiment = client.get_experiment_by_name("compose_e2e")
    query = f"tags.search_id = '{search_id}' and tags.run_type = 'trial'"
    trials = client.search_runs([experiment.experiment_id], query)
    assert len(trials) == 6 and all(t.info.status == "FINISHED" for t in trials)
    assert {t.data.tags["git_commit"] for t in trials} == {env["GIT_COMMIT"]}
    used = {t.data.tags["node"] for t in trials}
    assert used <= workers, "trials must run on the worker containers, not on the head"
    assert len(used) >= 2 and len({t.data.tags["hostname"] for t in trials}) >= 2, f"one worker ran all: {used}"
    for trial in trials:
        assert [a.path for a in client.list_artifacts(trial.info.run_id)] == ["confusion_matrix.png"]
        url = f"{tracking}/get-artifact?path=confusion_matrix.png&run_uuid={trial.info.run_id}"
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read(8) == b"\x89PNG\r\n\x1a\n"

    actors = dashboard_get(f"{dashboard}/api/v0/actors?limit=1000&detail=1", token)["data"]["result"]["result"]
    # The trial actors the dashboard still lists (it drops dead ones over time) ran on workers, never on the head.
    assert {a["node_id"] for a in actors if a["class_name"] == "ImplicitFunc"} <= workers
