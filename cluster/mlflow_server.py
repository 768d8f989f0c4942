"""Start the MLflow tracking server: SQLite backend, artifacts stored and proxied by the server, one worker.

    python cluster/mlflow_server.py --host 127.0.0.1 --port 5000 --data-dir ./mlflow-server

The container of Dockerfile.mlflow, `cluster/local.py` and the test fixtures all start the server through this.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

QUIET_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner: 2 processes instead of about 9
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


def server_command(host: str, port: int, data_dir: Path, allowed_hosts: str | None = None) -> list[str]:
    """The `mlflow server` command line for a server keeping its runs and artifacts under `data_dir`."""
    data_dir = Path(data_dir).resolve()
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    hosts = allowed_hosts or f"localhost:{port},127.0.0.1:{port},localhost,127.0.0.1"
    return [
        mlflow_bin,
        "server",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{data_dir / 'mlflow.db'}",
        "--artifacts-destination",
        str(data_dir / "artifacts"),
        "--serve-artifacts",
        "--allowed-hosts",
        hosts,
    ]


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the server runs with: telemetry and the job runner off."""
    env = dict(os.environ if base is None else base)
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    return env


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and replace this process with the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=Path("mlflow-server"), help="SQLite database and artifacts")
    parser.add_argument("--allowed-hosts", help="Host headers to accept, e.g. mlflow:5000,localhost:5000")
    args = parser.parse_args(argv)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(args.host, args.port, args.data_dir, args.allowed_hosts)
    os.execvpe(command[0], command, server_env())


if __name__ == "__main__":
    main()
