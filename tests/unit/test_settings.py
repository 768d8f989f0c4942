"""Process-wide settings: one call per command, a second one changes nothing, a user's own values win; Tune's lines
that contradict the project's are dropped; every printed command carries the interpreter that ran the search."""

from __future__ import annotations

import logging

import pytest

from search.common import settings
from search.searching.driver import interrupted, resume_command, tracking_lost

KEYS = [*settings.QUIET_MLFLOW, *settings.MLFLOW_HTTP, *settings.SEARCH.defaults, "RAY_AIR_NEW_OUTPUT"]
LOGGERS = ["ray.tune.tune", "ray.tune.execution.tune_controller", "ray._private.worker"]


@pytest.fixture
def fresh(monkeypatch):
    """No command's settings applied yet; the process's environment and loggers restored afterwards."""
    for key in KEYS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(settings, "_applied", set())
    for name in LOGGERS:
        monkeypatch.setattr(logging.getLogger(name), "filters", [])


def test_run_settings_are_made_once_and_a_users_values_win(fresh, monkeypatch):
    import os

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "120")
    settings.apply_process_settings("run")
    settings.apply_process_settings("run")
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "120" and os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "2"
    assert os.environ["RAY_AIR_NEW_OUTPUT"] == "0" and os.environ["MLFLOW_DISABLE_TELEMETRY"] == "true"
    assert [len(logging.getLogger(name).filters) for name in LOGGERS[:2]] == [1, 2]
    settings._applied.clear()  # even applied again from scratch, each filter is there once
    settings.apply_process_settings("run")
    assert [len(logging.getLogger(name).filters) for name in LOGGERS[:2]] == [1, 2]


def test_release_and_report_get_the_quiet_mlflow_settings_only(fresh):
    import os

    settings.apply_process_settings("report")
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true" and "RAY_AIR_NEW_OUTPUT" not in os.environ
    assert not logging.getLogger("ray.tune.tune").filters


@pytest.mark.parametrize(
    "line, shown",
    [
        ("Experiment has been interrupted, but the most recent state was saved.\nResume experiment with: "
         'Tuner.restore(path="/x/search-1", trainable=...)', False),
        ("Trials did not complete: [0003-knn-basic]", False),
        ("Wrote the latest version of all result files and experiment state to '/x' in 0.02s.", False),
        ("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.", True),
    ],
)  # fmt: skip
def test_tunes_lines_that_contradict_the_projects_are_dropped(fresh, line, shown):
    settings.apply_process_settings("run")
    record = logging.LogRecord("ray.tune.tune", logging.WARNING, __file__, 1, line, None, None)
    assert logging.getLogger("ray.tune.tune").filter(record) is shown


def test_the_resume_command_is_runnable_as_printed(monkeypatch, tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.executable", str(tmp_path / ".venv" / "bin" / "python"))
    command = ".venv/bin/python search/run.py --resume abc123"
    assert resume_command("abc123") == command
    assert str(interrupted("abc123")).endswith(f"continue it with {command}")
    served = f"{command} --tracking-uri http://127.0.0.1:5000"  # where the search is tracked, when not the default
    assert str(tracking_lost("http://u:p@127.0.0.1:5000", "abc123")).endswith(
        f"start the server again and run {served}"
    )
    assert resume_command("abc123", "sqlite:///mlflow.db") == command
    assert str(interrupted("abc123", "sqlite:////tmp/x.db")).endswith(f"{command} --tracking-uri sqlite:////tmp/x.db")


def test_optunas_study_lines_stay_quiet_when_it_is_imported_after_the_settings(tmp_path):
    """Optuna sets its root logger to INFO as it is imported: the levels are set below it, and hold."""
    import subprocess
    import sys

    code = f"""
from search.common.settings import apply_process_settings
apply_process_settings("run")
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
storage = JournalStorage(JournalFileBackend({str(tmp_path / "journal.log")!r}))
for _ in range(2):
    optuna.create_study(storage=storage, study_name="s", load_if_exists=True)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "study" not in done.stderr, done.stderr
