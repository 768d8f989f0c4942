"""compose.yaml end to end, as README tells a user, from a clean copy with no .env (the `cluster` fixture ran
`docker compose up -d --build --scale ray-worker=3` there): the logins are on, a search through
`docker compose exec ray-head` tracks every trial with its artifact in the PostgreSQL-backed MLflow, on at least two
worker containers, never on the head; the secrets are kept when the `secrets` service runs again and appear in
no compose configuration."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
from cluster_harness import git

pytestmark = pytest.mark.compose
SAMPLES = 6


def get(url: str, auth: tuple[str, str] | None = None) -> bytes:
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return response.read()


def test_logins_are_required_by_mlflow_and_the_dashboard(cluster):
    api = f"{cluster.tracking}/api/2.0/mlflow/experiments/search?max_results=1"
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        get(api)
    assert anonymous.value.code == 401, "MLflow must refuse an anonymous request"
    with pytest.raises(urllib.error.HTTPError) as wrong:
        get(api, ("admin", "not-the-password"))
    assert wrong.value.code == 401
    login = (cluster.secrets["MLFLOW_TRACKING_USERNAME"], cluster.secrets["MLFLOW_TRACKING_PASSWORD"])
    assert "experiments" in json.loads(get(api, login))
    assert int(cluster.psql("select count(*) from users")) >= 1, "the logins live in the PostgreSQL store"
    with pytest.raises(urllib.error.HTTPError) as refused:
        cluster.dashboard_get("/api/v0/nodes", None)
    assert refused.value.code == 401, "the dashboard must require the token"


def test_search_in_compose_runs_on_several_workers_and_is_tracked_in_postgres(cluster):
    nodes = cluster.alive_nodes()
    workers = {n["node_id"] for n in nodes if not n["is_head_node"]}
    assert len(workers) >= 3

    search_id, parent_id = cluster.search("compose_e2e", SAMPLES)

    trials = cluster.trials("compose_e2e", search_id)
    assert len(trials) == SAMPLES and all(t.info.status == "FINISHED" for t in trials)
    assert {t.data.tags["mlflow.parentRunId"] for t in trials} == {parent_id}
    head = git(cluster.project.folder, "rev-parse", "HEAD")  # the clone's own commit, known to no variable
    assert {(t.data.tags["git_commit"], t.data.tags["git_dirty"]) for t in trials} == {(head, "false")}
    assert len({t.data.tags["code_digest"] for t in trials}) == 1
    used = {t.data.tags["node"] for t in trials}
    assert used <= workers, "trials must run on the worker containers, not on the head"
    assert len(used) >= 2 and len({t.data.tags["hostname"] for t in trials}) >= 2, f"one worker ran all: {used}"

    client = cluster.mlflow_client()
    login = (cluster.secrets["MLFLOW_TRACKING_USERNAME"], cluster.secrets["MLFLOW_TRACKING_PASSWORD"])
    drawn = [t for t in trials if client.list_artifacts(t.info.run_id)]  # the best trial of each model family
    assert drawn and len(drawn) <= len({t.data.params["model"] for t in trials})
    assert all("confusion_matrix" in t.data.tags for t in trials)  # the numbers on every run
    for trial in drawn:
        assert [a.path for a in client.list_artifacts(trial.info.run_id)] == ["confusion_matrix.png"]
        url = f"{cluster.tracking}/get-artifact?path=confusion_matrix.png&run_uuid={trial.info.run_id}"
        assert get(url, login)[:8] == b"\x89PNG\r\n\x1a\n"
        with pytest.raises(urllib.error.HTTPError):
            get(url)  # artifacts too need the login

    # The runs are rows of the PostgreSQL store itself, artifacts in the server's own volume.
    ids = "','".join(t.info.run_id for t in trials)
    assert cluster.psql(f"select count(*) from runs where run_uuid in ('{ids}') and status = 'FINISHED'") == str(
        SAMPLES
    )
    stored = cluster.project.run("exec", "-T", "mlflow", "find", "/data/artifacts", "-name", "*.png", check=True)
    assert sum(t.info.run_id in stored.stdout for t in trials) == len(drawn)


def test_workers_mount_nothing_but_the_secrets_and_tune_storage_is_the_heads(cluster):
    for service, allowed in (("ray-worker", {"/secrets"}), ("ray-head", {"/secrets", "/ray_results"})):
        names = cluster.project.containers(service)
        assert names, f"no {service} container runs"
        for name in names:
            mounts = cluster.project.mounts(name)
            destinations = {m["Destination"] for m in mounts}
            assert destinations <= allowed, f"{name} mounts {destinations}"
            secrets = [m for m in mounts if m["Destination"] == "/secrets"]
            assert secrets and not secrets[0]["RW"], f"{name}: the secrets volume must be read-only"


def test_secrets_are_kept_across_restarts_and_never_in_the_repository(cluster):
    again = cluster.project.run("run", "--rm", "-T", "secrets", check=True)
    assert "kept the existing ones" in again.stdout
    shown = cluster.project.run("exec", "-T", "ray-head", "python", "cluster/credentials.py", "show", check=True)
    assert cluster.token in shown.stdout and cluster.secrets["MLFLOW_TRACKING_PASSWORD"] in shown.stdout
    config = cluster.project.run("config", check=True).stdout
    for value in (cluster.token, cluster.secrets["MLFLOW_TRACKING_PASSWORD"]):
        assert value not in config, "a secret must not reach compose's configuration (environment, commands)"


def test_study_dashboard_profile_serves_the_heads_study_on_loopback(cluster):
    """`docker compose --profile dashboard up -d study-dashboard` serves the latest search's study from the head."""
    import socket
    import time

    from cluster.processes import free_port

    search_id, _ = cluster.search("compose_study", 2)
    port = free_port()
    project, profile = cluster.project, ["--profile", "dashboard"]
    started = project.run(*profile, "up", "-d", "--no-deps", "study-dashboard", env={"STUDY_DASHBOARD_PORT": f"{port}"})
    try:
        assert started.returncode == 0, started.stderr[-2000:]
        studies, deadline = [], time.monotonic() + 120
        while not studies and time.monotonic() < deadline:
            try:
                studies = json.loads(get(f"http://127.0.0.1:{port}/api/studies"))["study_summaries"]
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(1)
        assert [s["study_name"] for s in studies] == [f"search-{search_id}"]
        trials = json.loads(get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}"))["trials"]
        assert len(trials) == 2
        outside = socket.gethostbyname(socket.gethostname())
        if not outside.startswith("127."):  # published on loopback alone: the host's other address refuses
            with socket.socket() as probe:
                probe.settimeout(2)
                assert probe.connect_ex((outside, port)) != 0
    finally:
        project.run(*profile, "rm", "-s", "-f", "study-dashboard", timeout=120)
