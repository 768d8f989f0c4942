"""Test helpers for `cluster/local.py` clusters and for searches run as real driver processes."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCAL = [sys.executable, str(ROOT / "cluster" / "local.py")]
RUN = str(ROOT / "search" / "run.py")


def clean_env() -> dict[str, str]:
    """The test's environment without a developer's cluster settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    return {**env, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def local(state_dir: Path, command: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python cluster/local.py <command> --state-dir <state_dir> <args>`."""
    return subprocess.run(
        [*LOCAL, command, "--state-dir", str(state_dir), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd=state_dir.parent,
    )


def exports_of(up_stdout: str) -> dict[str, str]:
    """The `export NAME=value` lines `local.py up` prints."""
    return dict(re.findall(r"^export (\w+)=(\S+)$", up_stdout, re.M))


def read_state(state_dir: Path) -> dict | None:
    path = state_dir / "state.json"
    return json.loads(path.read_text()) if path.exists() else None


def dashboard_get(url: str, token: str | None) -> dict:
    import urllib.request

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as response:
        return json.load(response)


def start_driver(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """`python search/run.py <argv>` as a real driver process, its output piped."""
    return subprocess.Popen(
        [sys.executable, RUN, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd
    )


def search_id_of(driver: subprocess.Popen) -> str:
    """The search's id, from the driver's first line (`search <id>: ...`)."""
    first = driver.stdout.readline()
    assert first.startswith("search "), first
    return first.split()[1].rstrip(":")


def wait_until(done: Callable[[], bool], what: str, timeout: float, driver: subprocess.Popen | None = None) -> None:
    """Poll `done` every 0.2 s; fail naming `what` after `timeout` s or when the driver exits first."""
    deadline = time.monotonic() + timeout
    while not done():
        assert driver is None or driver.poll() is None, f"the driver exited before {what}"
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.2)
