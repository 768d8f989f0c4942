"""Shared fixtures: one real `mlflow server` and one real local Ray for the whole test session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from cluster.private_mlflow import private_mlflow

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mlflow_server_dir(tmp_path_factory) -> Path:
    """Where the session's `mlflow server` keeps its store and artifacts."""
    return tmp_path_factory.mktemp("mlflow-server")


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_dir):
    """A real `mlflow server` on a free loopback port (`cluster/private_mlflow.py`); yields its URI."""
    with private_mlflow(mlflow_server_dir) as uri:
        yield uri


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


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(what): a fault the system must survive, listed in the closing summary")
    config.addinivalue_line("markers", "bad_input(what): a bad input that must be refused, listed in the summary")


_LEDGER: dict[str, list[tuple[str, str]]] = {"fault": [], "bad_input": []}


def pytest_runtest_logreport(report):
    """Note the outcome of every test marked `fault` or `bad_input`."""
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        for kind, entries in _LEDGER.items():
            for what in getattr(report, "user_properties", []):
                if what[0] == kind:
                    entries.append((what[1], report.outcome))


def pytest_runtest_setup(item):
    for kind in _LEDGER:
        for mark in item.iter_markers(kind):
            item.user_properties.append((kind, mark.args[0]))


def pytest_terminal_summary(terminalreporter):
    """End the output with the faults survived and the bad inputs tried."""
    titles = {"fault": "faults survived", "bad_input": "bad inputs refused"}
    for kind, entries in _LEDGER.items():
        if entries:
            ok = sum(outcome == "passed" for _, outcome in entries)
            terminalreporter.write_sep("-", f"{titles[kind]}: {ok} of {len(entries)}")
            for what, outcome in entries:
                terminalreporter.write_line(f"  [{outcome}] {what}")
