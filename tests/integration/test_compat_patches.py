"""The two patches of search/common/compat.py, each run against Tune as it ships and as patched, on a real local
Ray: each test fails when Tune's behaviour changes (a fixed Tune fails the `as-tune-ships` case: drop the patch; a
changed one fails the `patched` case: update it)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from ray import cloudpickle, tune

from search.common import compat

pytestmark = pytest.mark.integration


def as_tune_ships(monkeypatch, *names: str) -> None:
    """TuneController's methods `names` as Tune ships them, for this test only."""
    from ray.tune.execution.tune_controller import TuneController

    for name in names:
        method = getattr(TuneController, name)
        monkeypatch.setattr(TuneController, name, getattr(method, "__wrapped__", method))


def fit(trainable, tmp_path: Path, param_space: dict, max_concurrent: int):
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        return tune.Tuner(
            tune.with_resources(trainable, {"cpu": 1}),
            param_space=param_space,
            tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=max_concurrent),
            run_config=tune.RunConfig(storage_path=str(tmp_path), failure_config=tune.FailureConfig(max_failures=2),
                                      verbose=0),
        ).fit()  # fmt: skip
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])


class SlowToStart(tune.Trainable):
    """A trial actor that takes 3 s to start (a worker importing scikit-learn and pandas takes about that), except
    the first, and a trial of 0.2 s; each trial reports the process it ran in."""

    def setup(self, config):
        started = Path(config["started"])
        first = not any(started.iterdir())
        (started / str(os.getpid())).touch()
        time.sleep(0 if first else 3)

    def step(self):
        time.sleep(0.2)
        return {"pid": os.getpid(), "done": True}

    def save_checkpoint(self, checkpoint_dir):
        return {}

    def load_checkpoint(self, checkpoint):
        pass

    def reset_config(self, new_config):
        self.config = new_config
        return True


@pytest.mark.parametrize("patched", [True, False], ids=["patched", "as-tune-ships"])
def test_a_starting_trial_actor_is_not_killed_for_a_cached_one(ray_session, tmp_path, patched, monkeypatch):
    """compat.keep_starting_actors: as Tune ships, an actor freed by a 0.2 s trial is handed to the next trial while
    that trial's own actor starts, which Tune then kills: every trial runs in the first actor's process, one at a
    time, on two CPUs. Patched, the starting actor is kept and trials run in two processes."""
    as_tune_ships(monkeypatch, "_maybe_reuse_cached_actor")
    if patched:
        compat.keep_starting_actors()
    (started := tmp_path / "started").mkdir()
    results = fit(SlowToStart, tmp_path, {"x": tune.grid_search(list(range(8))), "started": str(started)}, 2)
    assert not [r.error for r in results if r.error]
    pids = {r.metrics["pid"] for r in results}
    assert len(pids) == (2 if patched else 1), (pids, len(list(started.iterdir())), "actors started")


class DiesWhenReused(tune.Trainable):
    """A trainable whose process exits, as a killed node's would, the first time Tune hands it to a new trial."""

    def setup(self, config):
        self.marker = config["marker"]

    def step(self):
        return {"score": self.config["x"], "done": True}

    def save_checkpoint(self, checkpoint_dir):
        return {}

    def load_checkpoint(self, checkpoint):
        pass

    def reset_config(self, new_config):
        if not Path(self.marker).exists():
            Path(self.marker).write_text("gone")
            os._exit(1)
        self.config = new_config
        return True


@pytest.mark.parametrize("patched", [True, False], ids=["patched", "as-tune-ships"])
def test_a_cached_actor_lost_while_handed_to_a_trial_costs_it_a_retry(ray_session, tmp_path, patched, monkeypatch):
    """compat.retry_trials_of_lost_cached_actors: Tune gets the lost actor's error twice (the actor, its reset
    task); as Tune ships, the second fails the requeued trial, and it would never get another actor."""
    as_tune_ships(monkeypatch, "_actor_failed", "_trial_task_failure")
    if patched:
        compat.retry_trials_of_lost_cached_actors()
    results = fit(DiesWhenReused, tmp_path, {"x": tune.grid_search([1, 2, 3]), "marker": str(tmp_path / "reused")}, 1)
    assert (tmp_path / "reused").exists(), "no actor was reused"
    scores = sorted(r.metrics.get("score", -1) for r in results if r.error is None)
    assert (scores == [1, 2, 3]) == patched, [r.error for r in results]
