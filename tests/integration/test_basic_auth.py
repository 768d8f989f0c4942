"""The MLflow server with logins (`cluster/mlflow_server.py --basic-auth`): refused without them, a search with them."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster.private_mlflow import start_mlflow
from cluster.processes import free_port, stop_process_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_server_with_logins_refuses_anonymous_and_tracks_a_logged_in_search(tmp_path):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    secret = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": "a-test-password-7f3c"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))} | secret
    server, _ = start_mlflow(tmp_path / "server", port, ("--basic-auth",), env)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401

        anonymous = subprocess.run(
            [sys.executable, str(ROOT / "search/run.py"), "--tracking-uri", uri, "--num-samples", "1"],
            capture_output=True, text=True, timeout=120, cwd=tmp_path,
            env={k: v for k, v in env.items() if not k.startswith("MLFLOW_")},
        )  # fmt: skip
        assert anonymous.returncode == 2 and "MLFLOW_TRACKING_USERNAME" in anonymous.stderr
        assert "Traceback" not in anonymous.stderr

        client_env = env | {"MLFLOW_TRACKING_PASSWORD": secret["MLFLOW_AUTH_ADMIN_PASSWORD"]}
        argv = [sys.executable, str(ROOT / "search/run.py"), "--tracking-uri", uri, "--experiment", "it-auth"]
        argv += ["--num-samples", "2", "--models", "knn", "--storage-path", str(tmp_path / "ray_results")]
        logged_in = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=client_env)
        assert logged_in.returncode == 0, logged_in.stderr[-2000:]

        from mlflow.tracking import MlflowClient

        os.environ.update(client_env)
        try:
            client = MlflowClient(uri)
            runs = client.search_runs([client.get_experiment_by_name("it-auth").experiment_id])
        finally:
            for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD"):
                os.environ.pop(key, None)
        assert sorted(r.data.tags["run_type"] for r in runs) == ["search", "trial", "trial"]
    finally:
        stop_process_group(server.pid)
