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
3. `failures_counted` (Ray Tune's `Trial.run_metadata.num_failures`): the failures Tune counts against
   `FailureConfig(max_failures)`; an attempt lost on a drained (pre-empted) node is not among them
   (ray-project/ray#41609: `Trial._handle_ray_actor_error` skips `RayActorError.preempted`). A trial's run records
   it, so a search shows that draining cost no retries.
4. `draining_nodes` (`ray._raylet.GcsClient.get_draining_nodes`) lists the nodes draining now. Draining one is
   the cluster's business (`cluster/local_workers.py`'s `drain_node`, the same `GcsClient`): `cluster/` imports
   nothing of the search above its bottom layer.
5. `skip_draining_nodes` (Ray Tune's `TuneController._maybe_cache_trial_actor`): with `reuse_actors=True` Tune
   keeps a finished trial's actor for the next trial, which bypasses the raylet, so a draining node would go on
   taking trials through the actors it holds until its deadline. The patch does not keep the actor of a trial whose
   last result came from a draining node: the actor stops, the node falls idle, and the next trial goes elsewhere.
6. `retry_trials_of_lost_cached_actors` (Ray Tune's `TuneController._actor_failed` and `_trial_task_failure`): when a
   cached actor dies while it is being handed to a pending trial (its node was killed), Tune gets the one error
   twice, from the actor and from its `reset` task. The first requeues the trial, the second finds it PENDING and
   fails it for good, and the trial stays listed as resetting, so Tune would never give it another actor. The
   patch handles the error once and forgets the reset, and does not count it against `max_failures`: the trial
   ran nothing on that actor (its node may have been drained, or killed), so it is simply given another.
7. `spare_trials_lost_with_their_node` (Ray Tune's `Trial.handle_error`, and the GCS's actor table through
   `ray._private.state.actors`): Tune counts an actor lost with a node that vanished without a drain (SIGKILLed, a
   spot machine reclaimed without notice) against `max_failures`, as if the trial had crashed; only a drained
   node's is spared (item 3). Tune hears of it first (`ActorUnavailableError`, the socket closed) and drops the
   actor, seconds before the GCS's health checks declare the node dead, so the actor's death cause says nothing of
   the node. The patch asks where the actor ran: a node the GCS has dead, or whose raylet takes no connection
   within a second, was lost. It spares those attempts, up to a limit per trial so that a trial that takes its node
   down each time still ends; a trial's own crash (its process exits, its node lives) is still counted.
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


def set_restored_callbacks(tuner, callbacks: list, stopper=None, display: dict | None = None) -> None:
    """Give a Tuner made by `Tuner.restore` fresh callbacks (the pickled trackers hold no client), the stopper
    the driver watches (the pickled one is a copy), and this run's `display` (RunConfig's `verbose` and
    `progress_reporter`)."""
    run_config = _local_tuner(tuner).get_run_config()
    run_config.callbacks = callbacks
    if stopper is not None:
        run_config.stop = stopper
    for name, value in (display or {}).items():
        setattr(run_config, name, value)


def restored_search_alg(tuner):
    """The search algorithm (the search's ConcurrencyLimiter) of a Tuner made by `Tuner.restore`: the object Tune
    restores the searcher's state into, so a callback given it follows the resumed search."""
    return _local_tuner(tuner)._tune_config.search_alg


def _local_tuner(tuner):
    check_versions()
    local = getattr(tuner, "_local_tuner", None)
    if local is None or not hasattr(local, "get_run_config") or not hasattr(local, "_tune_config"):
        raise UsageError("Ray Tune's Tuner changed: search/common/compat.py needs updating for this Ray")
    return local


def failures_counted(trial) -> int:
    """The failures Tune counted against `max_failures` for this trial so far."""
    check_versions()
    metadata = getattr(trial, "run_metadata", None)
    if metadata is None or not hasattr(metadata, "num_failures"):
        raise UsageError("Ray Tune's Trial changed: search/common/compat.py needs updating for this Ray")
    return int(metadata.num_failures)


@functools.lru_cache(maxsize=4)
def _gcs_client(address: str):
    import ray

    return ray._raylet.GcsClient(address=address)


def draining_nodes() -> set[str]:
    """The hex ids of the nodes of the connected cluster that are draining now."""
    check_versions()
    import ray

    client = _gcs_client(ray.get_runtime_context().gcs_address)
    return {k if isinstance(k, str) else k.hex() for k in client.get_draining_nodes(timeout=5)}


def skip_draining_nodes(draining: set[str], node_key: str) -> None:
    """Patch Tune's controller (once per process) not to keep for reuse a trial actor whose trial's last result
    (its `node_key`) names a node in `draining`, a set the caller keeps up to date."""
    check_versions()
    from ray.tune.execution.tune_controller import TuneController

    original = getattr(TuneController, "_maybe_cache_trial_actor", None)
    if original is None:
        raise UsageError("Ray Tune's TuneController changed: search/common/compat.py needs updating for this Ray")
    original = getattr(original, "__wrapped__", original)

    @functools.wraps(original)
    def maybe_cache_trial_actor(self, trial) -> bool:
        if draining and (trial.last_result or {}).get(node_key) in draining:
            return False  # its node is draining: let the actor stop with the trial
        return original(self, trial)

    TuneController._maybe_cache_trial_actor = maybe_cache_trial_actor


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
        handed_over = waiting and trial in self._resetting_trials  # a cached actor, not the trial's own
        counted = failures_counted(trial) if handed_over else 0
        if trial is not None:
            self._resetting_trials.discard(trial)  # a dead actor's reset never resolves
        actor_failed(self, tracked_actor, exception)  # requeues a waiting trial, through _trial_task_failure
        if waiting:
            self.__dict__.setdefault(LOST_ACTOR_ERRORS, {})[trial.trial_id] = exception
        if handed_over:  # the trial ran nothing on it: not a failure of the trial's
            trial.run_metadata.num_failures = counted

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


def lost_with_its_node(exc: BaseException | None) -> bool:
    """Whether Tune's error `exc` for a trial is its actor lost with its node: the GCS has that node dead, or its
    raylet takes no connection (a node SIGKILLed or gone, seen before the GCS's health checks give it up)."""
    import ray
    from ray.exceptions import RayActorError, RayTaskError

    from search.common.probes import tcp_connect

    cause = exc.cause if isinstance(exc, RayTaskError) else exc
    actor_id = cause.actor_id if isinstance(cause, RayActorError) else None
    try:
        node_id = ray._private.state.actors(actor_id=actor_id)["Address"]["NodeID"] if actor_id else None
        node = next((n for n in ray.nodes() if n["NodeID"] == node_id), None)
    except Exception:  # noqa: BLE001 - the GCS did not answer: count it, as Tune would
        return False
    if node is None or not node["Alive"]:
        return node is not None
    try:
        tcp_connect(node["NodeManagerAddress"], node["NodeManagerPort"], timeout=1)
    except OSError:
        return True
    return False


SPARED_NODE_LOSSES = "spared_node_losses"  # on a trial's temporary state: attempts lost with their node, not counted


def spare_trials_lost_with_their_node(limit: int) -> None:
    """Patch Tune's Trial (once per process) so that an attempt lost with its node, up to `limit` per trial, is not
    counted against `max_failures`, as a drained node's is not."""
    check_versions()
    from ray.tune.experiment.trial import Trial

    original = getattr(Trial, "handle_error", None)
    if original is None or not hasattr(Trial, "_handle_ray_actor_error"):
        raise UsageError("Ray Tune's Trial changed: search/common/compat.py needs updating for this Ray")
    if getattr(original, "_spares_lost_nodes", False):
        return

    @functools.wraps(original)
    def handle_error(self, exc=None) -> None:
        before = failures_counted(self)
        original(self, exc)
        spared = getattr(self.temporary_state, SPARED_NODE_LOSSES, 0)
        if self.run_metadata.num_failures > before and spared < limit and lost_with_its_node(exc):
            self.run_metadata.num_failures = before
            self.run_metadata.invalidate_cache()
            setattr(self.temporary_state, SPARED_NODE_LOSSES, spared + 1)

    handle_error._spares_lost_nodes = True
    Trial.handle_error = handle_error
