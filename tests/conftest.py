"""Shared fixtures: one real `mlflow server` and one real local Ray for the whole test session."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from cluster.processes import free_port, stop_process_group, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real `mlflow server` on a free loopback port, started by `cluster/mlflow_server.py`; yields its URI."""
    data_dir = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    log = open(data_dir / "server.log", "w")  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "cluster" / "mlflow_server.py"), "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        if not wait_for_http(f"{uri}/health", timeout=90):
            raise RuntimeError(f"mlflow server did not come up: {(data_dir / 'server.log').read_text()[-2000:]}")
        yield uri
    finally:
        stop_process_group(process.pid)
        log.close()


@pytest.fixture(scope="session")
def ray_session():
    """A private local Ray (its own temp dir, no dashboard), shared by the in-process searches of the session."""
    import ray

    temp_dir = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    ray.init(address="local", num_cpus=2, include_dashboard=False, _temp_dir=temp_dir, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def quiet_env(monkeypatch):
    """No telemetry, no stray tracking URI or Ray address from the developer's shell."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS"):
        monkeypatch.delenv(key, raising=False)
    return os.environ
