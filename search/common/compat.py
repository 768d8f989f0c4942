"""The only Ray internals the project touches: two patches of Ray Tune's `TuneController`, tied to actor reuse,
applied once by `patch_tune()` from the driver's start, and one read. Each has a test against Ray as it ships
(tests/integration/test_compat_patches.py, test_interrupt_start.py) and its figures in BENCHMARKS.md ("The two
patches of Ray Tune"); on a Ray these were not written for, `patch_tune` refuses with one line.

1. `keep_starting_actors` (ray-project/ray#42951): Tune hands an idle cached actor to a pending trial whose own actor
   is starting, and kills that one; with trials shorter than an actor's start, trials then run one at a time.
2. `retry_trials_of_lost_cached_actors`: a cached actor lost while handed to a pending trial reaches Tune twice
   (from the actor and from its `reset` task), and the second error fails the requeued trial for good.
3. `ray_node_ready()` reads `ray._private.worker._global_node`, set just before `ray.init` connects the driver: Ray
   has no public signal of that moment, from which search/common/connect.py holds Ctrl-C.
"""

from __future__ import annotations

import functools

from search.common.errors import UsageError

RAY_VERSIONS = ("2.60.",)  # the Ray releases these patches were written and tested for


def patch_tune() -> None:
    """Apply both patches (once per process; again is a no-op). The driver calls it once, as a search starts."""
    check_versions()
    keep_starting_actors()
    retry_trials_of_lost_cached_actors()


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


def ray_node_ready() -> bool:
    """Whether `ray.init` in this process has its Ray node (started or found) and is about to connect the driver."""
    from ray._private import worker

    return getattr(worker, "_global_node", None) is not None
