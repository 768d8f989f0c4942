"""One compose cluster for every compose test, started as README says from a clean copy with no .env:
`docker compose up -d --build --scale ray-worker=3`; its generated credentials read with the documented command;
`down -v` at the end of the session."""

from __future__ import annotations

import os
import sys
import uuid

import pytest
from cluster_harness import (
    WORKERS,
    Cluster,
    Project,
    Shell,
    clean_clone,
    parse_secrets,
    readme_compose_block,
    stop_exec_leftovers,
    tail,
)
from compose_engine import EngineUnavailable, compose_command, engine_env

from cluster.processes import free_port


@pytest.fixture(scope="session")
def engine():
    """(environment reaching the engine, compose command); skips when no engine can be started."""
    try:
        env = engine_env()
        return env, compose_command(env)
    except EngineUnavailable as exc:
        pytest.skip(f"no container engine can be started: {exc}")


@pytest.fixture(scope="session")
def cluster(engine, tmp_path_factory):
    """The compose cluster, 3 workers, shared by the compose tests; `down -v` at the end."""
    env, compose = engine
    folder = clean_clone(tmp_path_factory.mktemp("clone"))
    assert not (folder / ".env").exists()
    mlflow_port, dashboard_port = free_port(), free_port()
    env = {k: v for k, v in env.items() if not k.startswith(("RAY_", "MLFLOW_", "POSTGRES_"))}
    # Overrides only: free host ports (the defaults 5000 and 8265 may be taken here).
    env.update(MLFLOW_PORT=str(mlflow_port), RAY_DASHBOARD_PORT=str(dashboard_port))
    project = Project(folder, f"tsc{uuid.uuid4().hex[:6]}", compose, env)
    block, shell = readme_compose_block(), None
    if compose == ["docker", "compose"]:  # README's own commands, in a terminal whose `python` is this one
        path = f"{os.path.dirname(sys.executable)}:{env['PATH']}"
        shell_env = {**env, "COMPOSE_PROJECT_NAME": project.name, "PATH": path}
        shell = Shell(folder, shell_env, {5000: mlflow_port, 8265: dashboard_port, 5001: free_port()})
    try:
        assert f"--scale ray-worker={WORKERS}" in block[0], block[0]
        if shell:
            started = shell.run(block[0], timeout=2400)  # README's `docker compose up -d --build ...`
        else:
            started = project.run("up", "-d", "--build", "--scale", f"ray-worker={WORKERS}", timeout=2400)
        assert started.returncode == 0, f"up failed:\n{tail(started)}\n{project.run('logs', '--tail=40').stdout}"
        shown = project.run("exec", "-T", "ray-head", "python", "cluster/credentials.py", "show", check=True)
        secrets = parse_secrets(shown.stdout)
        assert {"RAY_AUTH_TOKEN", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"} <= set(secrets)
        running = Cluster(project, mlflow_port, dashboard_port, secrets, shell)
        running.wait_for_nodes(WORKERS + 1)
        yield running
    finally:
        down = shell.run(block[-1], timeout=300) if shell else None  # README's last command, then the volumes
        project.run("down", "-v", "--remove-orphans", timeout=300)
        stop_exec_leftovers(project.name)
        assert down is None or (block[-1].startswith("docker compose down") and down.returncode == 0), block[-1]
