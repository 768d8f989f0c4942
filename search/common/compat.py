"""Every use of a framework's internals, in one place, each guarded by the version it was written for.

`check_versions()` runs when a search starts: on a Ray it does not know it refuses with one line naming the
upgrade, instead of failing inside Tune's loop far from the cause. `tests/unit/test_compat.py` fails when the
upstream behaviour a patch relies on changes.

1. `keep_starting_actors` (Ray Tune's `TuneController`, ray-project/ray#42951). With `reuse_actors=True`, Tune
   hands an idle cached actor to a pending trial even when that trial's own actor has already been given its
   resources and is starting, and then kills the starting actor. When trials take less time than an actor takes to
   start (about 3 s here: a Python process importing Ray, scikit-learn and pandas), that repeats for every trial:
   one actor runs every trial while a second process is started and killed again and again, so a search on two
   CPUs runs one trial at a time (about half the Iris searches took 1.7x as long). The patch makes Tune wait for a
   trial's own actor once that actor holds its resources; the cached actor then takes the next new trial.
2. `set_restored_callbacks` (Ray Tune's `Tuner._local_tuner`): `Tuner.restore` takes no run config, and the
   callbacks it unpickles are the interrupted driver's trackers, which hold no MLflow client; the restored Tuner
   needs fresh ones.
"""

from __future__ import annotations

import functools

from search.common.errors import UsageError

RAY_VERSIONS = ("2.60.",)  # the Ray releases these patches were written and tested for


def check_versions() -> None:
    """Refuse, with one line, a Ray whose internals the patches below were not written for."""
    import ray

    if not ray.__version__.startswith(RAY_VERSIONS):
        raise UsageError(
            f"Ray {ray.__version__} is installed, but search/common/compat.py was written for Ray "
            f"{', '.join(v + 'x' for v in RAY_VERSIONS)}: install the versions in requirements.txt"
        )


def keep_starting_actors() -> None:
    """Patch Tune's controller (once per process) so that a starting trial actor is never killed for a cached one."""
    check_versions()
    from ray.tune.execution.tune_controller import TuneController

    original = getattr(TuneController, "_maybe_reuse_cached_actor", None)
    if original is None:
        raise UsageError("Ray Tune's TuneController changed: search/common/compat.py needs updating for this Ray")
    if getattr(original, "_keeps_starting_actors", False):
        return

    @functools.wraps(original)
    def maybe_reuse_cached_actor(self, trial) -> bool:
        own = self._trial_to_actor.get(trial)
        if own is not None and self._actor_manager.is_actor_started(own) and own not in self._started_actors:
            return False  # its own actor holds resources and is starting: let it, instead of killing it
        return original(self, trial)

    maybe_reuse_cached_actor._keeps_starting_actors = True
    TuneController._maybe_reuse_cached_actor = maybe_reuse_cached_actor


def set_restored_callbacks(tuner, callbacks: list, stopper=None) -> None:
    """Give a Tuner made by `Tuner.restore` fresh callbacks (the pickled trackers hold no client), and the stopper
    the driver watches (the pickled one is a copy)."""
    check_versions()
    local = getattr(tuner, "_local_tuner", None)
    if local is None or not hasattr(local, "get_run_config"):
        raise UsageError("Ray Tune's Tuner changed: search/common/compat.py needs updating for this Ray")
    local.get_run_config().callbacks = callbacks
    if stopper is not None:
        local.get_run_config().stop = stopper
