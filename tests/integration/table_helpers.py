"""What the real-table tests share: tables shipped inside packages, the commands as a user runs them in a folder of
their own, and `mlflow models serve` answering raw rows."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
from test_serve import post

from cluster.processes import free_port, stop_process_group, wait_for_http

ROOT = Path(__file__).resolve().parents[2]


def package_file(package: str, *parts: str) -> Path:
    """A data file shipped inside an installed package."""
    return Path(str(resources.files(package).joinpath(*parts)))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """A project command run in `cwd` with the default tracking (`sqlite:///mlflow.db` there) and a local Ray."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    done = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def search(cwd: Path, *args: str) -> tuple[str, str]:
    """Run a search; (its id, its output)."""
    done = run(cwd, str(ROOT / "search" / "run.py"), *args)
    return done.stdout.split("search_id: ")[1].split()[0], done.stdout


def serve_rows(cwd: Path, model_uri: str, rows: pd.DataFrame) -> tuple[int, dict]:
    """`mlflow models serve` of `model_uri` (tracked in `cwd`'s mlflow.db) answering `rows` (None for an empty
    cell); (HTTP status, answer). The server is stopped before returning."""
    port, bin_dir = free_port(), str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{cwd}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    command = [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", model_uri]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    with open(cwd / "serve.log", "w") as log:
        process = subprocess.Popen(command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)  # fmt: skip
        try:
            assert wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=120), (cwd / "serve.log").read_text()
            body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
            return post(f"http://127.0.0.1:{port}/invocations", body)
        finally:
            stop_process_group(process.pid)


def raw_rows(table: pd.DataFrame, target: str, number: str, category: str, unseen) -> pd.DataFrame:
    """The table's first three rows without `target`, as a client sends them (empty cells as None): the first with
    `number` empty, the second with `category` empty, the third with `unseen`, a `category` never seen in training."""
    rows = table.drop(columns=[target]).head(3).astype(object)
    rows = rows.where(rows.notna(), None)
    rows.loc[0, number], rows.loc[1, category], rows.loc[2, category] = None, None, unseen
    return rows
