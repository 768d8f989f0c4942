"""`benchmarks/startup.py` times a real search's steps: every step is found, in the order a search takes them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.startup import STEPS

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def test_every_step_of_a_real_search_is_timed_in_order(tmp_path, mlflow_server):
    raw = tmp_path / "steps.json"
    command = [sys.executable, "-m", "benchmarks.startup", "--trials", "2", "--repeats", "1", "--raw", str(raw)]
    command += ["--tracking-uri", mlflow_server]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    [steps] = json.loads(raw.read_text())
    assert set(steps) == {name for name, _ in STEPS}  # a step whose hook no longer fires would be missing
    order = ["imports", "data", "ray", "parent run", "fit", "first trial", "first result", "last result", "done"]
    times = [steps[name] for name in order]
    assert times == sorted(times) and 0 < times[0] and times[-1] < 300
    assert steps["worker process"] <= steps["worker ready"] <= steps["first trial"]
    assert "| first trial |" in done.stdout and "n/a" not in done.stdout
