"""A private `mlflow server` on a free loopback port, started by `cluster/mlflow_server.py`: the one way tests
and benchmarks start one, and stop it by PID."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from cluster.processes import free_port, stop_process_group, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


def start_mlflow(
    data_dir: Path, port: int | None = None, args: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> tuple[subprocess.Popen, str]:
    """Start the server with its data in `data_dir` (its log in `server.log` there); (process, URI) once healthy."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [sys.executable, str(ROOT / "cluster" / "mlflow_server.py"), "--port", str(port)]
    command += ["--data-dir", str(data_dir), *args]
    with open(data_dir / "server.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    if not wait_for_http(f"{uri}/health", timeout=180):
        stop_process_group(process.pid)
        tail = (data_dir / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the mlflow server at {uri} did not come up: {tail}")
    return process, uri


@contextlib.contextmanager
def private_mlflow(data_dir: Path, **kwargs) -> Iterator[str]:
    """`start_mlflow` as a context: yields the URI, stops the server's process group afterwards."""
    process, uri = start_mlflow(data_dir, **kwargs)
    try:
        yield uri
    finally:
        stop_process_group(process.pid)
