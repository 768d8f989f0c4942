"""The SQLite store `cluster/mlflow_server.py` gives the server: write-ahead-log mode, and refusals in one line."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest
from mlflow import MlflowClient

from cluster.mlflow_server import write_ahead_log


@pytest.mark.integration
def test_the_servers_sqlite_store_keeps_a_write_ahead_log(mlflow_server, mlflow_server_dir):
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("write-ahead-log")
    run = client.create_run(experiment, run_name="one")
    client.log_metric(run.info.run_id, "m", 1.0)
    with contextlib.closing(sqlite3.connect(mlflow_server_dir / "mlflow.db")) as store:
        assert store.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # another connection sees the server's commits, as a backup tool or `mlflow ui` on the same file would
        found = store.execute("SELECT COUNT(*) FROM runs WHERE run_uuid = ?", (run.info.run_id,)).fetchone()[0]
    assert found == 1


def test_other_stores_are_left_alone(tmp_path):
    write_ahead_log(f"postgresql://mlflow@{tmp_path}/db")
    assert list(tmp_path.iterdir()) == []


def test_an_unusable_sqlite_path_is_refused_in_one_line(tmp_path):
    (tmp_path / "mlflow.db").mkdir()  # a folder where the store's file should be
    with pytest.raises(SystemExit, match=r"the SQLite store .*mlflow\.db is not usable .*: check its path"):
        write_ahead_log(f"sqlite:///{tmp_path / 'mlflow.db'}")
