"""Ctrl-C at chosen moments of a search's start, sent as a terminal sends it (SIGINT to the command's process group),
from a folder laid out as a user's clone so that the printed commands run exactly as printed.

Whatever the moment: exit 130, one line, no traceback, no crash, no hang, no Ray process left; and either nothing is
left (the line says to run again) or the search is left resumable (the line gives the `--resume` command, which,
run as printed, completes it). Each moment is found by what the driver shows (its output, its Ray processes, its
Tune state), not by sleeping. benchmarks/interrupt_start.py measures many more moments; the moment between the
search's first line and its first trial (nothing left) is tested in-process in test_search.py, in less time.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from cluster.processes import processes_mentioning, stop_processes
from search.common import contract as c

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SEARCH = ["--num-samples", "2", "--models", "knn", "--feature-sets", "basic", "--cv-folds", "2"]
RESUME = re.compile(r"continue it with (\S*python search/run\.py --resume (\w+).*)$")


@pytest.fixture
def home(tmp_path):
    """A clone's layout (the venv and the code linked in), a tracking store and Tune folder of its own, and a Ray
    temp dir whose processes are found, and stopped by PID, afterwards."""
    cwd = tmp_path / "clone"
    cwd.mkdir()
    (cwd / ".venv").symlink_to(Path(sys.executable).parents[1])
    for part in ("search", "trainables", "cluster"):
        (cwd / part).symlink_to(ROOT / part)
    ray_tmp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths must fit
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "RAY_", "TUNE_"))}
    env |= {"RAY_TMPDIR": ray_tmp, "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}
    try:
        yield {"cwd": cwd, "env": env, "uri": f"sqlite:///{tmp_path}/mlflow.db", "storage": tmp_path / "rr",
               "ray_tmp": ray_tmp, "db": tmp_path / "mlflow.db"}  # fmt: skip
    finally:
        stop_processes(processes_mentioning(ray_tmp), timeout=10)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def as_a_terminal() -> None:
    """In the driver: SIGINT as a terminal's foreground job has it, whatever the test process inherited."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def python(home) -> str:
    return str(home["cwd"] / ".venv" / "bin" / "python")


def start(home) -> tuple[subprocess.Popen, Path, Path]:
    out, err = home["cwd"].parent / "out", home["cwd"].parent / "err"
    argv = [
        python(home),
        "search/run.py",
        *SEARCH,
        "--tracking-uri",
        home["uri"],
        "--storage-path",
        str(home["storage"]),
    ]
    driver = subprocess.Popen(argv, cwd=home["cwd"], env=home["env"], stdout=out.open("w"), stderr=err.open("w"),
                              start_new_session=True, preexec_fn=as_a_terminal)  # fmt: skip
    return driver, out, err


def wait_for(reached, driver: subprocess.Popen, what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not reached():
        if driver.poll() is not None or time.monotonic() > deadline:
            driver.kill()
            pytest.fail(f"{what} not reached (driver exit {driver.poll()})")
        time.sleep(0.02)


def interrupt(driver: subprocess.Popen, err: Path, home) -> str:
    """Ctrl-C to the command's process group; the one line it ended with, after checking how it ended."""
    os.killpg(driver.pid, signal.SIGINT)
    try:
        driver.wait(timeout=90)
    except subprocess.TimeoutExpired:
        stop_processes([driver.pid])
        pytest.fail("the interrupted search hangs")
    text = err.read_text()
    said = [line for line in text.splitlines() if line.startswith("run: ")]
    assert driver.returncode == 130 and len(said) == 1, f"exit {driver.returncode}:\n{text[-3000:]}"
    assert "Traceback" not in text and "Segmentation" not in text, text[-3000:]
    deadline = time.monotonic() + 5  # Ray's processes end with their driver
    while processes_mentioning(home["ray_tmp"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_mentioning(home["ray_tmp"]), "Ray processes left running"
    return said[0]


def search_runs(home) -> list:
    if not home["db"].exists():
        return []
    client = MlflowClient(home["uri"])
    ids = [e.experiment_id for e in client.search_experiments()]
    return client.search_runs(ids, f"tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}'") if ids else []


def assert_resumes(line: str, home) -> None:
    """The line gives the --resume command (with where the search is tracked), and run as printed it completes the
    search."""
    found = RESUME.search(line)
    assert found and f"--tracking-uri {home['uri']}" in line, line
    resumed = subprocess.run(shlex.split(found.group(1)), cwd=home["cwd"], env=home["env"], capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (parent,) = search_runs(home)
    assert parent.data.tags[c.SEARCH_ID] == found.group(2) and parent.info.status == "FINISHED"
    assert parent.data.metrics[c.TRIALS_FINISHED] == 2


def test_ctrl_c_while_the_command_imports_leaves_nothing(home):
    driver, out, err = start(home)
    time.sleep(1.0)  # scikit-learn, pandas and MLflow take seconds to import: nothing printed yet
    assert not out.read_text() and driver.poll() is None
    line = interrupt(driver, err, home)
    assert line == "run: interrupted before the search started: nothing was made; run the same command again"
    assert not home["db"].exists() and not list(home["storage"].glob("search-*"))


def test_ctrl_c_as_ray_connects_leaves_nothing_and_no_crash(home):
    """Ray's driver cut inside `ray.init` crashed at exit (a segmentation fault, exit 139) in 12 tries of 12."""
    driver, out, err = start(home)
    wait_for(lambda: "Started a local Ray instance" in err.read_text(), driver, "Ray's start")
    line = interrupt(driver, err, home)
    assert line.startswith("run: interrupted before the search started: nothing was made"), line
    assert not search_runs(home)


def test_ctrl_c_once_a_trial_started_leaves_a_search_that_resumes(home):
    driver, out, err = start(home)
    trial_folders = lambda: [p for p in home["storage"].glob("search-*/*") if p.is_dir()]  # noqa: E731
    wait_for(trial_folders, driver, "the first trial's folder")
    assert_resumes(interrupt(driver, err, home), home)
