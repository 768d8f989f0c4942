"""The chaos test (`pytest -m chaos`, about 3 minutes): a 200-trial ASHA search (digits, 5 folds, cheap families) on
`cluster/local.py up --workers 3` while a worker node is SIGKILLed every 10 s and replaced, and the MLflow server
is restarted once. `benchmarks/chaos.py` runs the same search, and measures it against the search undisturbed."""

from __future__ import annotations

import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from benchmarks.chaos import cluster_env, disturbed_search, folds_again_per_lost_attempt  # the benchmark under test

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
ROOT = Path(__file__).resolve().parents[2]


def stop_cluster(state_dir: Path) -> None:
    """`cluster/local.py down` for the cluster `cluster_env` started in `state_dir`."""
    down = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), "down"]
    subprocess.run(down, stdout=subprocess.DEVNULL, check=False)


@pytest.mark.fault("a worker node SIGKILLed every 10 s and replaced, and an MLflow restart, in one search")
def test_a_search_on_a_cluster_that_loses_a_node_every_10_s_ends_whole(tmp_path):
    """Exactly 200 trial runs, each FINISHED (completed or stopped by ASHA), no trial_index twice, none left
    RUNNING, none failed (none ran out of max_failures with its lost attempts), the parent's counts right, and about the
    fold in progress fitted again per lost attempt."""
    env = cluster_env(state_dir := tmp_path / "state")
    try:
        args = Namespace(trials=200, kill_every=10.0, kill="hard", dataset="digits")
        _, figures, log = disturbed_search(state_dir, env, args, tmp_path / "search", timeout=900)
    finally:
        stop_cluster(state_dir)
    assert not figures["problems"], (figures, log)
    assert figures["kills"] >= 2 and any(entry.endswith("mlflow restarted") for entry in log), log
    assert not [entry for entry in log if "failed" in entry], log
    assert figures["failures_counted"] == 0, figures  # trials whose lost attempts used up max_failures
    # Each lost attempt loses at most its fold in progress; now and then a fold whose report reached the driver is
    # fitted again as well (1 in 29 lost attempts in one run): its node died before Tune recorded that fold's
    # checkpoint. More than one in ten would be a regression.
    assert folds_again_per_lost_attempt(figures) <= 1.1, figures
    assert figures["nodes_used"] >= 4, ("no replacement worker took a trial", log)
