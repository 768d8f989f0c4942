"""The MLflow server with logins (`cluster/mlflow_server.py --basic-auth`): refused without them, a search with them."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cluster.private_mlflow import start_mlflow
from cluster.processes import free_port, stop_process_group

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_server_with_logins_refuses_anonymous_and_tracks_a_logged_in_search(
    tmp_path, ray_session, quiet_env, monkeypatch, capsys
):
    port = free_port()
    uri = f"http://127.0.0.1:{port}"
    secret = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_AUTH_ADMIN_PASSWORD": "a-test-password-7f3c"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_"))} | secret
    server, _ = start_mlflow(tmp_path / "server", port, ("--basic-auth",), env)
    try:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/search?max_results=1", timeout=10)
        assert refused.value.code == 401

        # Both searches run in this process, on the session's Ray: the same main() as the command's.
        from mlflow.tracking import MlflowClient

        from search.run import main

        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(key, raising=False)
        capsys.readouterr()
        assert main(["--tracking-uri", uri, "--num-samples", "1", "--storage-path", str(tmp_path / "refused")]) == 2
        refusal = capsys.readouterr().err.strip().splitlines()
        assert len(refusal) == 1 and "MLFLOW_TRACKING_USERNAME" in refusal[0], refusal

        for key, value in (secret | {"MLFLOW_TRACKING_PASSWORD": secret["MLFLOW_AUTH_ADMIN_PASSWORD"]}).items():
            monkeypatch.setenv(key, value)
        argv = ["--tracking-uri", uri, "--experiment", "it-auth", "--num-samples", "2", "--models", "knn"]
        assert main([*argv, "--cv-folds", "2", "--storage-path", str(tmp_path / "ray_results")]) == 0
        client = MlflowClient(uri)
        runs = client.search_runs([client.get_experiment_by_name("it-auth").experiment_id])
        assert sorted(r.data.tags["run_type"] for r in runs) == ["search", "trial", "trial"]
    finally:
        stop_process_group(server.pid)
