"""Shared fixtures: one real `mlflow server` and one real local Ray for the whole test session, and one
`cluster/local.py` cluster per module that asks for it. Every test that starts a server or Ray is marked
`integration`: collection refuses a test that asks for a server fixture without the mark, and a test without it
that leaves a server running fails."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

from cluster.private_mlflow import private_mlflow
from cluster.processes import free_port, stop_processes

ROOT = Path(__file__).resolve().parents[1]
SERVER_FIXTURES = {"mlflow_server", "mlflow_server_dir", "ray_session", "local_cluster"}
SERVER_PROCESSES = ("gcs_server", "raylet", "mlflow_server.py", "mlflow server", "uvicorn", "gunicorn")


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


def _cluster_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def _local(state_dir: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    command = [sys.executable, str(ROOT / "cluster" / "local.py"), args[0], "--state-dir", str(state_dir), *args[1:]]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=_cluster_env())


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory):
    """`cluster/local.py up`: an MLflow server, a Ray head without CPUs and two one-CPU workers, shared by the
    module's tests; yields its state dir, ports, `up`'s output, the exported variables and an environment holding
    them. Stopped with `down` (then by PID, whatever is left) unless a test took it down already."""
    state_dir = tmp_path_factory.mktemp("cluster") / "state"
    ports = {name: free_port() for name in ("mlflow", "ray", "dashboard", "ray-client")}
    flags = [f"--{name}-port={port}" for name, port in ports.items()]
    up = _local(state_dir, "up", "--workers", "2", "--cpus-per-worker", "1", "--head-cpus", "0", *flags)
    state_path = state_dir / "state.json"
    try:
        assert up.returncode == 0, f"up failed:\n{up.stdout}\n{up.stderr}"
        exports = dict(re.findall(r"^export (\w+)=(\S+)$", up.stdout, re.M))
        yield {"state_dir": state_dir, "ports": ports, "up": up, "exports": exports,
               "state": json.loads(state_path.read_text()), "env": {**_cluster_env(), **exports}}  # fmt: skip
    finally:
        if state_path.exists():
            _local(state_dir, "down", timeout=120)
        if state_path.exists():  # `down` failed: stop what is left, by PID
            from cluster.local import live_pids

            state = json.loads(state_path.read_text())
            stop_processes([p["pid"] for p in state["processes"]], live_pids(state))


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


def pytest_xdist_auto_num_workers(config) -> int:
    """`-n auto` (the default options): a worker per CPU, at most 4; none for the compose tests, which share one
    compose cluster, for the chaos test, nor for a single test file."""
    chosen = " ".join([config.getoption("markexpr") or "", *config.args])
    alone = any(tier in chosen and f"not {tier}" not in chosen for tier in ("compose", "chaos"))
    if alone or (len(config.args) == 1 and ".py" in config.args[0]):
        return 0
    return min(4, os.cpu_count() or 1)


def pytest_collection_modifyitems(config, items):
    """A test asking for a server fixture must be marked `integration`, and no unit test may ask for one."""
    wrong = []
    for item in items:
        servers = SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
        unit = (ROOT / "tests" / "unit") in Path(str(item.path)).parents
        if servers and (unit or item.get_closest_marker("integration") is None):
            wrong.append(f"{item.nodeid} asks for {sorted(servers)}")
        elif unit and item.get_closest_marker("integration") is not None:
            wrong.append(f"{item.nodeid} is a unit test marked integration")
    if wrong:
        raise pytest.UsageError("servers belong to tests/integration, marked `integration`:\n  " + "\n  ".join(wrong))
    # The longest files first, so the two xdist workers end together (`--no-loadscope-reorder` keeps this order):
    # those that start a local cluster, then the other integration files, then the unit tests that fill the gaps.
    cluster_files = {item.path for item in items if "local_cluster" in getattr(item, "fixturenames", ())}
    items.sort(key=lambda item: 0 if item.path in cluster_files else 1 if item.get_closest_marker("integration") else 2)


def _servers_below_us() -> set[int]:
    """The PIDs of servers (Ray, MLflow) this test process started and that still run."""
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            text = " ".join(child.cmdline()) or child.name()
        except psutil.Error:
            continue
        if any(name in text for name in SERVER_PROCESSES):
            found.add(child.pid)
    return found


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A test not marked `integration` must not leave a server running."""
    if item.get_closest_marker("integration") is not None:
        return (yield)
    before = _servers_below_us()
    result = yield
    left = _servers_below_us() - before
    assert not left, f"{item.nodeid} is not marked integration but left servers running: PIDs {sorted(left)}"
    return result


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
