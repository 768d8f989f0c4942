"""compose.yaml: three services running the cluster/ entrypoints, scalable workers, loopback-only ports,
shared Tune storage, the Ray token from the environment, shm, healthchecks and start order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
STORAGE = "/shared/ray_results"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def test_three_services(services):
    assert set(services) == {"mlflow", "ray-head", "ray-worker"}


def test_commands_are_the_cluster_entrypoints(services):
    assert command_of(services["mlflow"])[:2] == ["python", "cluster/mlflow_server.py"]
    assert command_of(services["ray-head"])[:3] == ["python", "cluster/ray_node.py", "head"]
    worker = command_of(services["ray-worker"])
    assert worker[:3] == ["python", "cluster/ray_node.py", "worker"]
    assert worker[worker.index("--address") + 1] == "ray-head:6379"


def test_head_serves_the_dashboard_to_the_published_port_and_runs_no_trials_by_default(services):
    head = command_of(services["ray-head"])
    assert head[head.index("--dashboard-host") + 1] == "0.0.0.0"
    assert head[head.index("--num-cpus") + 1] in ("0", "${RAY_HEAD_CPUS:-0}")


def test_mlflow_accepts_the_compose_host_and_localhost(services):
    command = command_of(services["mlflow"])
    hosts = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow:5000" in hosts
    assert any(h.startswith("localhost") for h in hosts) and any(h.startswith("127.0.0.1") for h in hosts)
    assert command[command.index("--data-dir") + 1] == "/data"
    assert any(v.split(":")[1] == "/data" for v in services["mlflow"]["volumes"])


def test_ray_worker_scales(services):
    worker = services["ray-worker"]
    assert "container_name" not in worker
    assert "ports" not in worker, "a published host port would make a second worker fail to start"


def test_every_published_port_is_bound_to_loopback(services):
    published = [(name, port) for name, svc in services.items() for port in svc.get("ports", [])]
    assert published, "the dashboard and MLflow must be published"
    for name, port in published:
        if isinstance(port, dict):  # long syntax
            assert port.get("host_ip") == "127.0.0.1", (name, port)
        else:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"
    targets = {str(p).rsplit(":", 1)[-1] for _, p in published}
    assert {"8265", "5000"} <= targets


def test_storage_volume_at_the_same_path_in_head_and_workers(compose, services):
    def storage_volume(service: dict) -> str:
        mounts = [v for v in service["volumes"] if v.split(":")[1] == STORAGE]
        assert len(mounts) == 1, f"{STORAGE} must be mounted once: {service['volumes']}"
        return mounts[0].split(":")[0]

    head, worker = storage_volume(services["ray-head"]), storage_volume(services["ray-worker"])
    assert head == worker and head in compose["volumes"], "one named volume shared by head and workers"


def test_ray_token_comes_from_the_environment_and_is_required(services):
    for name in ("ray-head", "ray-worker"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert re.fullmatch(r"\$\{RAY_AUTH_TOKEN:\?[^}]+\}", env["RAY_AUTH_TOKEN"]), "a missing token must stop compose"
    assert "RAY_AUTH_TOKEN" not in (services["mlflow"].get("environment") or {})


def test_no_secret_committed():
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^RAY_AUTH_TOKEN=\s*$", example, re.M), ".env.example must leave the token empty"
    assert re.search(r"^\.env$", (ROOT / ".gitignore").read_text(), re.M)
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_drivers_in_compose_reach_mlflow_and_ray(services):
    head_env = services["ray-head"]["environment"]
    assert head_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert head_env["RAY_ADDRESS"]


def test_ray_containers_have_shared_memory(services):
    for name in ("ray-head", "ray-worker"):
        size = str(services[name]["shm_size"]).lower()
        value, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size).groups()
        assert int(value) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit] >= 2**30, f"{name}: shm_size {size}"


def test_healthchecks_and_start_order(services):
    for name in services:
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1:3] == ["python", "cluster/healthcheck.py"], f"{name}: {test}"
        assert not any(" " in arg for arg in test), "Podman's Docker API splits healthcheck arguments on spaces"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["ray-head"]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_one_image_for_head_and_workers_with_the_commit(services):
    head, worker = services["ray-head"], services["ray-worker"]
    assert head["build"]["dockerfile"] == worker["build"]["dockerfile"] == "Dockerfile.ray"
    assert head["image"] == worker["image"]
    assert "GIT_COMMIT" in head["build"]["args"]
    dockerfile = (ROOT / "Dockerfile.ray").read_text()
    assert "ARG GIT_COMMIT" in dockerfile and "ENV GIT_COMMIT" in dockerfile
    assert services["mlflow"]["build"]["dockerfile"] == "Dockerfile.mlflow"


def test_mlflow_logins_are_wired_from_the_env_file(services):
    server = services["mlflow"]["environment"]
    assert server["MLFLOW_BASIC_AUTH"].startswith("${MLFLOW_BASIC_AUTH")
    assert server["MLFLOW_AUTH_ADMIN_PASSWORD"].startswith("${MLFLOW_AUTH_ADMIN_PASSWORD")
    for name in ("ray-head", "ray-worker"):
        env = services[name]["environment"]
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_AUTH_ADMIN_PASSWORD")
    example = (ROOT / ".env.example").read_text()
    assert "MLFLOW_AUTH_ADMIN_PASSWORD=\n" in example and "MLFLOW_BASIC_AUTH=false" in example
