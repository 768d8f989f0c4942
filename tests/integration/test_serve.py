"""A released model served by `mlflow models serve` from the registry alias, as docs/release.md shows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from mlflow import MlflowClient
from release_helpers import BEST, make_search, run_cli, trial

from cluster.processes import free_port, stop_process_group, wait_for_http
from trainables.data import load_dataset

pytestmark = pytest.mark.integration
NAME, EXP = "serve_best_model", "serve_exp"


def post(url: str, body: dict) -> tuple[int, dict]:
    """POST JSON; (status, decoded body) for 2xx and 4xx answers alike."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest.fixture(scope="module")
def served(mlflow_server, tmp_path_factory):
    """Release one model, serve `models:/NAME@champion` on a free loopback port; yields the invocations URL."""
    make_search(MlflowClient(mlflow_server), EXP, [trial(BEST, 0.98)], "unknown")
    out = tmp_path_factory.mktemp("serve")
    code, _, err = run_cli("--tracking-uri", mlflow_server, "--experiment", EXP, "--model-name", NAME,
                           "--no-tag", "--out", str(out))  # fmt: skip
    assert code == 0, err
    port = free_port()
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
    command = [os.path.join(bin_dir, "mlflow"), "models", "serve", "-m", f"models:/{NAME}@champion"]
    command += ["--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    log = open(out / "serve.log", "w")  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        if not wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=120):
            raise RuntimeError(f"mlflow models serve did not come up: {(out / 'serve.log').read_text()[-2000:]}")
        yield f"http://127.0.0.1:{port}/invocations"
    finally:
        stop_process_group(process.pid)
        log.close()


def test_known_rows_get_their_classes(served):
    data = load_dataset("iris")
    rows = data.X.iloc[[0, 51, 100]]
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    status, answer = post(served, body)
    assert status == 200, answer
    assert answer["predictions"] == ["setosa", "versicolor", "virginica"] == data.y.iloc[[0, 51, 100]].tolist()


def test_missing_column_is_a_4xx_with_a_message(served):
    columns = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)"]
    status, answer = post(served, {"dataframe_split": {"columns": columns, "data": [[5.1, 3.5, 1.4]]}})
    assert 400 <= status < 500 and "petal width (cm)" in answer["message"]


def test_wrong_type_is_a_4xx_with_a_message(served):
    columns = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
    status, answer = post(served, {"dataframe_split": {"columns": columns, "data": [["abc", 3.5, 1.4, 0.2]]}})
    assert 400 <= status < 500 and "sepal length (cm)" in answer["message"]
