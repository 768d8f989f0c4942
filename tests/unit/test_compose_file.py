"""compose.yaml and compose.workers.yaml: the cluster/ entrypoints, scalable workers, loopback-only ports, secrets
generated into a volume (none committed, none required from .env), PostgreSQL tracking behind logins, Tune storage
on the head alone, shm, healthchecks and start order; both files valid for docker compose v2 and docker-compose v1."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"secrets", "postgres", "mlflow", "ray-head", "ray-worker", "study-dashboard"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def command_of(service: dict) -> list[str]:
    command = service["command"]
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def mounts(service: dict) -> dict[str, str]:
    """Mount point -> volume (read-only ones end in :ro)."""
    return {v.split(":")[1]: v.split(":")[0] + (":ro" if v.endswith(":ro") else "") for v in service["volumes"]}


def test_the_services(services):
    assert set(services) == SERVICES


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


def test_study_dashboard_is_on_demand_and_serves_the_heads_journals(compose, services):
    dashboard = services["study-dashboard"]
    assert dashboard["profiles"] == ["dashboard"], "not started by a plain `docker compose up`"
    entry = dashboard["entrypoint"]
    assert entry[:2] == ["python", "cluster/study_dashboard.py"] and "--wait" in entry
    storage = entry[entry.index("--storage-path") + 1]
    head = services["ray-head"]
    assert storage == head["environment"]["TUNE_STORAGE_PATH"]
    assert mounts(dashboard)[storage] == mounts(head)[storage], "the volume the head's drivers write"
    assert dashboard["ports"] == ["127.0.0.1:${STUDY_DASHBOARD_PORT:-8080}:8080"]


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


def test_tune_storage_is_the_heads_own_and_workers_share_only_the_secrets(compose, services):
    head = mounts(services["ray-head"])
    storage = services["ray-head"]["environment"]["TUNE_STORAGE_PATH"]
    assert head[storage] in compose["volumes"], "Tune's storage: a volume of the head"
    assert mounts(services["ray-worker"]) == {"/secrets": "secrets:ro"}, "workers share nothing but the secrets"
    assert "TUNE_STORAGE_PATH" not in services["ray-worker"]["environment"]


def test_secrets_are_generated_by_a_one_shot_service_everything_waits_for(services):
    secrets = services["secrets"]
    assert command_of(secrets)[:4] == ["python", "cluster/credentials.py", "init", "--dir"]
    assert mounts(secrets) == {"/secrets": "secrets"}
    for name in ("postgres", "mlflow"):
        assert services[name]["depends_on"]["secrets"]["condition"] == "service_completed_successfully"
    for name in ("postgres", "mlflow", "ray-head", "ray-worker"):
        assert mounts(services[name])["/secrets"] == "secrets:ro", f"{name} reads the secrets, read-only"


def test_ray_token_comes_from_the_secrets_volume_and_no_variable_is_required(services):
    text = (ROOT / "compose.yaml").read_text()
    assert ":?" not in text, "compose.yaml must start without any variable set"
    for name in ("ray-head", "ray-worker"):
        env = services[name]["environment"]
        assert env["RAY_AUTH_MODE"] == "token"
        assert env["RAY_AUTH_TOKEN_PATH"] == "/secrets/ray_token" and "RAY_AUTH_TOKEN" not in env
        assert env["MLFLOW_TRACKING_PASSWORD_FILE"] == "/secrets/mlflow_admin_password"
    assert "RAY_AUTH_TOKEN" not in (services["mlflow"].get("environment") or {})


def test_postgres_tracking_store_with_a_generated_password(services):
    db = services["postgres"]
    assert db["image"] == "postgres:15"
    assert db["environment"]["POSTGRES_USER"] and db["environment"]["POSTGRES_DB"]
    assert "POSTGRES_PASSWORD" not in db["environment"], "the password comes from the secrets volume"
    assert "/secrets/postgres_password" in " ".join(db["entrypoint"])
    assert mounts(db)["/var/lib/postgresql/data"] == "postgres_data"
    assert db["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    assert "ports" not in db, "the database is reached by the MLflow server only"
    mlflow = services["mlflow"]
    command = command_of(mlflow)
    uri = command[command.index("--backend-store-uri") + 1]
    assert uri.startswith("postgresql://") and "@postgres:5432/" in uri
    assert ":" not in uri.split("//")[1].split("@")[0], "no password in the URI"
    assert mlflow["environment"]["PGPASSFILE"].startswith("/secrets/")
    workers = command[command.index("--workers") + 1]
    assert int(re.sub(r"\$\{\w+:-(\d+)\}", r"\1", workers)) > 1, "more than one server worker"
    assert mlflow["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_no_secret_committed_and_env_example_only_overrides():
    example = (ROOT / ".env.example").read_text()
    assignments = dict(re.findall(r"^#?\s*(\w+)=(.*)$", example, re.M))
    for name in ("RAY_AUTH_TOKEN", "MLFLOW_AUTH_ADMIN_PASSWORD"):
        assert assignments.get(name, "") == "", f".env.example must not carry a {name}"
    assert re.search(r"^\.env$", (ROOT / ".gitignore").read_text(), re.M)
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_drivers_in_compose_reach_mlflow_and_ray(services):
    head_env = services["ray-head"]["environment"]
    assert head_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert head_env["RAY_ADDRESS"]


def test_the_heads_drivers_print_the_addresses_a_browser_on_the_host_opens(services):
    head_env = services["ray-head"]["environment"]
    for variable, service in (("MLFLOW_UI_URL", "mlflow"), ("STUDY_DASHBOARD_URL", "study-dashboard")):
        published = services[service]["ports"][0]  # 127.0.0.1:${PORT:-default}:container
        assert head_env[variable] == "http://" + published.rsplit(":", 1)[0], variable


def test_ray_containers_have_shared_memory(services):
    for name in ("ray-head", "ray-worker"):
        size = str(services[name]["shm_size"]).lower()
        value, unit = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size).groups()
        assert int(value) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[unit] >= 2**30, f"{name}: shm_size {size}"


def test_healthchecks_and_start_order(services):
    for name in ("mlflow", "ray-head", "ray-worker"):
        test = services[name]["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1:3] == ["python", "cluster/healthcheck.py"], f"{name}: {test}"
    for name in ("postgres", "mlflow", "ray-head", "ray-worker"):
        test = services[name]["healthcheck"]["test"]
        assert not any(" " in arg for arg in test), "Podman's Docker API splits healthcheck arguments on spaces"
    assert services["ray-worker"]["depends_on"]["ray-head"]["condition"] == "service_healthy"
    assert services["ray-head"]["depends_on"]["mlflow"]["condition"] == "service_healthy"


def test_one_image_for_head_and_workers_with_its_lineage_built_in(services):
    head, worker = services["ray-head"], services["ray-worker"]
    assert head["build"]["dockerfile"] == worker["build"]["dockerfile"] == "Dockerfile.ray"
    assert head["image"] == worker["image"] == services["secrets"]["image"]
    assert "GIT_COMMIT" not in str(services), "the commit comes from the build context's .git, not a variable"
    dockerfile = (ROOT / "Dockerfile.ray").read_text()
    assert "lineage.py write /code-lineage.json && rm -rf /src/.git" in dockerfile
    assert "CODE_LINEAGE_FILE=/etc/code-lineage.json" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".git" not in ignored, "the build stage reads the lineage from .git"
    assert services["mlflow"]["build"]["dockerfile"] == "Dockerfile.mlflow"
    assert "psycopg" in (ROOT / "Dockerfile.mlflow").read_text()


def test_mlflow_logins_are_on_by_default(services):
    server = services["mlflow"]["environment"]
    assert server["MLFLOW_BASIC_AUTH"] == "${MLFLOW_BASIC_AUTH:-true}"
    assert server["MLFLOW_AUTH_ADMIN_PASSWORD_FILE"] == "/secrets/mlflow_admin_password"
    assert server["MLFLOW_FLASK_SERVER_SECRET_KEY_FILE"] == "/secrets/flask_secret_key"


@pytest.fixture(scope="module")
def workers_file() -> dict:
    return yaml.safe_load((ROOT / "compose.workers.yaml").read_text())


def test_second_host_file_starts_only_workers_from_variables(workers_file):
    assert set(workers_file["services"]) == {"ray-worker"}
    worker = workers_file["services"]["ray-worker"]
    command = command_of(worker)
    assert command[:3] == ["python", "cluster/ray_node.py", "worker"]
    assert command[command.index("--address") + 1].startswith("${RAY_HEAD_ADDRESS:?")
    assert worker["environment"]["RAY_AUTH_TOKEN"].startswith("${RAY_AUTH_TOKEN:?")
    assert {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_PASSWORD"} <= set(worker["environment"])
    assert "volumes" not in worker and "volumes" not in workers_file, "a second host shares no volume"
    assert "ports" not in worker and "container_name" not in worker
    assert worker["network_mode"] == "${RAY_WORKER_NETWORK_MODE:-host}"


@pytest.mark.parametrize("compose_cli", [["docker", "compose"], ["docker-compose"]], ids=["v2", "v1"])
@pytest.mark.parametrize("file", ["compose.yaml", "compose.workers.yaml"])
def test_files_are_valid_for_compose_v2_and_v1(compose_cli, file, tmp_path):
    found = shutil.which(compose_cli[0])
    if not found or subprocess.run([*compose_cli, "version"], capture_output=True).returncode:
        pytest.skip(f"{' '.join(compose_cli)} is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    env.update(RAY_HEAD_ADDRESS="10.0.0.5:6379", RAY_AUTH_TOKEN="t")
    result = subprocess.run(
        [*compose_cli, "-f", str(ROOT / file), "config", "-q"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_secrets_are_generated_once_private_and_kept(tmp_path):
    from cluster import credentials

    first = credentials.init(tmp_path / "s", env={"RAY_AUTH_TOKEN": "chosen"})
    assert set(first) == {s.file for s in credentials.SECRETS}
    assert credentials.read(tmp_path / "s", "ray_token") == "chosen"
    password = credentials.read(tmp_path / "s", "mlflow_admin_password")
    assert len(password) >= 32
    for path in (tmp_path / "s").iterdir():
        assert path.stat().st_mode & 0o077 == 0, f"{path.name} is readable by others"
    assert credentials.init(tmp_path / "s", env={"RAY_AUTH_TOKEN": "other"}) == []
    assert credentials.read(tmp_path / "s", "ray_token") == "chosen"
    shown = credentials.show(tmp_path / "s", "admin")
    exported = dict(line.removeprefix("export ").split("=", 1) for line in shown.splitlines() if line[0] != "#")
    assert exported == {"RAY_AUTH_TOKEN": "chosen", "MLFLOW_TRACKING_USERNAME": "admin",
                        "MLFLOW_TRACKING_PASSWORD": password}  # fmt: skip
    assert "postgres" not in shown.lower()
    pg = credentials.read(tmp_path / "s", "postgres_password")
    assert (tmp_path / "s" / "pgpass").read_text() == f"*:*:*:*:{pg}\n"


def test_shown_credentials_are_what_a_shell_evals(tmp_path):
    import shlex
    import subprocess

    from cluster import credentials

    credentials.init(tmp_path, env={"RAY_AUTH_TOKEN": "it's $HOME"})  # quoted: no expansion, no split
    shown = shlex.quote(credentials.show(tmp_path, "admin"))
    script = f'eval "$(printf %s {shown})"; echo "$RAY_AUTH_TOKEN"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out == "it's $HOME\n"


def test_mlflow_credentials_file_for_processes_started_by_exec(tmp_path):
    import configparser

    from cluster.ray_node import install_mlflow_credentials

    (tmp_path / "password").write_text("s3cret\n")
    env = {"MLFLOW_TRACKING_PASSWORD_FILE": str(tmp_path / "password"), "MLFLOW_TRACKING_USERNAME": "admin"}
    written = install_mlflow_credentials(env, home=tmp_path)
    parsed = configparser.ConfigParser()
    parsed.read(written)  # the file and keys MLflow's client reads (mlflow/utils/credentials.py)
    assert dict(parsed["mlflow"]) == {"mlflow_tracking_username": "admin", "mlflow_tracking_password": "s3cret"}
    assert written.stat().st_mode & 0o077 == 0
    assert install_mlflow_credentials({}, home=tmp_path) is None


def test_a_worker_that_cannot_join_gets_one_line(capsys):
    import sys

    from cluster.ray_node import JOINED, supervise_worker

    refused = "Traceback ...\nray.exceptions.AuthenticationError: RPC error: InvalidAuthToken: missing or incorrect"
    code = supervise_worker([sys.executable, "-c", f"print({refused!r}); raise SystemExit(1)"], {}, "head:6379")
    err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err.out + err.err
    assert (
        err.err.strip() == "ray_node: the head at head:6379 refused this node's token: give it the cluster's "
        "token (RAY_AUTH_TOKEN)"
    )
    joined = supervise_worker([sys.executable, "-c", f"print('x'); print({JOINED!r}); print('y')"], {}, "h:1")
    assert joined == 0 and capsys.readouterr().out.splitlines() == ["x", JOINED, "y"]
