"""`cluster/study_dashboard.py` serves a search's study journal on loopback while a real study writes it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from cluster.processes import free_port, stop_process_group, wait_for_http

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

# A real Optuna study written through the journal backend the search uses, one trial about every 0.3 s.
WRITER = textwrap.dedent(
    """
    import sys, time
    import optuna
    from optuna.storages import JournalStorage
    from search.searching.journal import DriverJournal

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = sys.argv[1]
    storage = JournalStorage(DriverJournal(str(journal)))  # as the search writes it
    study = optuna.create_study(
        storage=storage, study_name="search-abc123", direction="maximize", sampler=optuna.samplers.TPESampler(seed=0)
    )

    def objective(trial):
        c = trial.suggest_float("C", 1e-3, 1e3, log=True)
        model = trial.suggest_categorical("model", ["svm", "knn"])
        for fold in range(3):
            trial.report(1.0 / (1.0 + abs(c - 1.0)) + 0.01 * fold, fold)
        time.sleep(0.3)
        return 1.0 / (1.0 + abs(c - 1.0)) + (0.05 if model == "svm" else 0.0)

    study.optimize(objective, n_trials=400)
    """
)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def trial_count(base: str) -> int:
    """How many trials the dashboard's API lists for the one study in the journal (0 before it is created)."""
    studies = get_json(f"{base}/api/studies")["study_summaries"]
    if not studies:
        return 0
    assert [s["study_name"] for s in studies] == ["search-abc123"]
    return len(get_json(f"{base}/api/studies/{studies[0]['study_id']}")["trials"])


def start_dashboard(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "cluster" / "study_dashboard.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_dashboard_lists_the_trials_of_a_running_study(tmp_path):
    journal = tmp_path / "search-abc123" / "optuna-journal.log"
    journal.parent.mkdir()
    (tmp_path / "writer.py").write_text(WRITER)
    port = free_port()
    # --wait: started before any search, as compose's service is, it serves the first journal that appears
    dashboard = start_dashboard("--storage-path", str(tmp_path), "--port", str(port), "--wait")
    assert dashboard.stdout.readline().startswith("waiting: no search journal under")
    writer = subprocess.Popen([sys.executable, str(tmp_path / "writer.py"), str(journal)], start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        assert wait_for_http(f"{base}/api/meta", timeout=90), dashboard.stderr.read() if dashboard.poll() else ""
        assert dashboard.stdout.readline().strip().endswith(f"at {base}/ (Ctrl-C stops it)")
        with socket.socket() as probe:  # loopback only: the host's other addresses refuse
            probe.settimeout(2)
            outside = socket.gethostbyname(socket.gethostname())
            if not outside.startswith("127."):
                assert probe.connect_ex((outside, port)) != 0
        page = urllib.request.urlopen(f"{base}/dashboard", timeout=10).read().decode()
        assert "<html" in page.lower()
        deadline, first = time.monotonic() + 60, 0
        while first == 0 and time.monotonic() < deadline:
            time.sleep(0.5)
            first = trial_count(base)
        later = first
        while later <= first and time.monotonic() < deadline:
            time.sleep(0.5)
            later = trial_count(base)
        assert writer.poll() is None, "the study stopped before the dashboard saw it grow"
        assert later > first
    finally:
        stop_process_group(dashboard.pid)
        dashboard.communicate(timeout=10)
        stop_process_group(writer.pid)
        writer.wait(timeout=10)
    assert dashboard.returncode is not None and writer.returncode is not None


def test_missing_journal_is_refused_in_one_line(tmp_path):
    process = start_dashboard("--storage-path", str(tmp_path), "--port", str(free_port()))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert err.count("\n") == 1 and "no search journal under" in err and "--storage-path" in err
    process = start_dashboard("--storage-path", str(tmp_path), "--search-id", "nosuch", "--port", str(free_port()))
    out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and err.count("\n") == 1 and "no journal for search nosuch" in err


def test_taken_port_is_refused_in_one_line(tmp_path):
    journal = tmp_path / "search-x" / "optuna-journal.log"
    journal.parent.mkdir()
    journal.write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = start_dashboard(str(journal), "--port", str(port))
        out, err = process.communicate(timeout=60)
    assert process.returncode == 2 and out == ""
    assert err.strip() == f"study_dashboard: port {port} on 127.0.0.1 is taken: choose another with --port"
