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
6. `retry_trials_of_lost_cached_actors` (Ray Tune's `TuneController._actor_failed` and `_trial_task_failure`): when a
   cached actor dies while it is being handed to a pending trial (its node was killed), Tune gets the one error
   twice, from the actor and from its `reset` task. The first requeues the trial, the second finds it PENDING and
   fails it for good, and the trial stays listed as resetting, so Tune would never give it another actor. The
   patch handles the error once and forgets the reset: the trial is given another actor, as after any lost one.
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


LOST_ACTOR_ERRORS = "_lost_actor_errors"  # instance attribute: trial id -> the actor error already handled


def retry_trials_of_lost_cached_actors() -> None:
    """Patch Tune's controller (once per process) so that a cached actor lost while it is handed to a pending
    trial costs that trial one retry, not the trial."""
    check_versions()
    from ray.tune.execution.tune_controller import TuneController

    actor_failed = getattr(TuneController, "_actor_failed", None)
    task_failure = getattr(TuneController, "_trial_task_failure", None)
    if actor_failed is None or task_failure is None:
        raise UsageError("Ray Tune's TuneController changed: search/common/compat.py needs updating for this Ray")
    if getattr(actor_failed, "_handles_once", False):
        return

    @functools.wraps(actor_failed)
    def handle_actor_failure(self, tracked_actor, exception) -> None:
        trial = self._actor_to_trial.get(tracked_actor)
        waiting = trial is not None and trial in (self._pending_trials | self._paused_trials)
        if trial is not None:
            self._resetting_trials.discard(trial)  # a dead actor's reset never resolves
        actor_failed(self, tracked_actor, exception)  # requeues a waiting trial, through _trial_task_failure
        if waiting:
            self.__dict__.setdefault(LOST_ACTOR_ERRORS, {})[trial.trial_id] = exception

    @functools.wraps(task_failure)
    def handle_task_failure(self, trial, exception) -> None:
        handled = self.__dict__.get(LOST_ACTOR_ERRORS, {})
        if handled.get(trial.trial_id) is exception:  # the same error, again from the actor's task
            del handled[trial.trial_id]
            return
        task_failure(self, trial, exception)

    handle_actor_failure._handles_once = True
    TuneController._actor_failed = handle_actor_failure
    TuneController._trial_task_failure = handle_task_failure
