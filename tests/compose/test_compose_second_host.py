"""compose.workers.yaml, what an operator runs on each extra machine: a second compose project of workers only
joins the first project's head by address (its containers attached to the first project's network, standing in
for the LAN between two hosts), with the token and the MLflow login given as variables: no volume, no project
shared; trials of a search then run on those workers. A worker given a wrong token, or a head it cannot reach,
says so in one line and exits non-zero within a minute."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest
from cluster_harness import Project, stop_exec_leftovers

pytestmark = pytest.mark.compose
EXTRA = 2


def head_address(cluster) -> tuple[str, str]:
    """(the first project's network, the head container's address:6379 on it)."""
    head = cluster.project.containers("ray-head")[0]
    inspected = subprocess.run(
        ["docker", "inspect", head], env=cluster.project.env, capture_output=True, text=True, check=True
    )
    networks = json.loads(inspected.stdout)[0]["NetworkSettings"]["Networks"]
    name, settings = next(iter(networks.items()))
    return name, f"{settings['IPAddress']}:6379"


def workers_project(cluster, **variables: str) -> Project:
    """A compose project of compose.workers.yaml alone, given only variables."""
    env = {k: v for k, v in cluster.project.env.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env.update(variables)
    name = f"{cluster.project.name}w{uuid.uuid4().hex[:4]}"
    return Project(cluster.project.folder, name, cluster.project.compose, env, files=["compose.workers.yaml"])


def test_workers_of_a_second_project_join_by_address_and_run_trials(cluster):
    network, address = head_address(cluster)
    second = workers_project(
        cluster,
        RAY_HEAD_ADDRESS=address,
        RAY_AUTH_TOKEN=cluster.token,
        RAY_WORKER_NETWORK_MODE=network,
        MLFLOW_TRACKING_URI="http://mlflow:5000",
        MLFLOW_TRACKING_PASSWORD=cluster.secrets["MLFLOW_TRACKING_PASSWORD"],
    )
    before = {n["node_id"] for n in cluster.alive_nodes()}
    try:
        second.run("up", "-d", "--scale", f"ray-worker={EXTRA}", check=True)
        for name in second.containers("ray-worker"):
            assert second.mounts(name) == [], f"{name} must share no volume with the head"
        nodes = cluster.wait_for_nodes(len(before) + EXTRA)
        joined = {n["node_id"] for n in nodes} - before
        assert len(joined) == EXTRA

        # As many trials at once as there are worker CPUs: every node, the joined ones too, gets some.
        search_id, _ = cluster.search("compose_second_host", 10, "--max-concurrent", str(len(nodes) - 1))
        trials = cluster.trials("compose_second_host", search_id)
        assert len(trials) == 10 and all(t.info.status == "FINISHED" for t in trials)
        on_second = {t.data.tags["node"] for t in trials} & joined
        assert on_second, "no trial ran on the second project's workers"
    finally:
        second.run("down", "-v", timeout=300)
        stop_exec_leftovers(second.name)
    deadline = time.monotonic() + 120
    while {n["node_id"] for n in cluster.alive_nodes()} != before:
        assert time.monotonic() < deadline, "the second project's workers did not leave"
        time.sleep(2)


def exited(project: Project, timeout: float) -> dict:
    """The State of the project's one ray-worker container once it has exited (None after `timeout` seconds)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listed = project.run("ps", "-a", "-q", "ray-worker").stdout.split()
        if listed:
            inspected = subprocess.run(
                ["docker", "inspect", *listed], env=project.env, capture_output=True, text=True, check=True
            )
            state = json.loads(inspected.stdout)[0]["State"]
            if state["Status"] == "exited":
                return state
        time.sleep(1)
    return {}


@pytest.mark.bad_input("a worker with a wrong token, and one with an unreachable head")
def test_a_worker_that_cannot_join_says_why_and_exits(cluster):
    network, address = head_address(cluster)
    cases = {
        "wrong token": (dict(RAY_HEAD_ADDRESS=address, RAY_AUTH_TOKEN="0" * 64), "refused this node's token"),
        "no head": (dict(RAY_HEAD_ADDRESS="192.0.2.1:6379", RAY_AUTH_TOKEN=cluster.token), "could not reach"),
    }
    projects = {what: workers_project(cluster, RAY_WORKER_NETWORK_MODE=network, **v) for what, (v, _) in cases.items()}
    try:
        for project in projects.values():
            project.run("up", "-d", check=True)  # as an operator would; both wait at once
        for what, project in projects.items():
            state = exited(project, timeout=60)  # from the container's start: within a minute
            logs = project.run("logs", "--no-color", "ray-worker").stdout
            assert state, f"{what}: the worker still runs after a minute:\n{logs[-2000:]}"
            assert state["ExitCode"] != 0, f"{what}: exit code 0"
            lines = [line for line in logs.splitlines() if "ray_node:" in line]
            assert len(lines) == 1 and cases[what][1] in lines[0], f"{what}:\n{logs[-3000:]}"
            assert "Traceback" not in logs, f"{what}: a traceback instead of one line"
    finally:
        for project in projects.values():
            project.run("down", "-v", timeout=300)
            stop_exec_leftovers(project.name)
