"""The guards of search/common/compat.py: each fails when the upstream code it patches changes."""

from __future__ import annotations

import pytest
import ray
from ray import tune

from cluster import local_workers
from search.common import compat
from search.common.errors import UsageError


def test_an_unknown_ray_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(ray, "__version__", "2.99.0")
    with pytest.raises(UsageError, match=r"Ray 2.99.0 is installed, but .* written for Ray 2.60.x"):
        compat.check_versions()


def test_the_installed_ray_is_one_the_patches_know():
    compat.check_versions()


def test_tune_controller_still_has_what_the_actor_patch_reads():
    """The patch reads three attributes `TuneController.__init__` sets (read from its source: no instance needed)."""
    import inspect

    from ray.tune.execution.tune_controller import TuneController

    source = inspect.getsource(TuneController.__init__)
    for name in ("_trial_to_actor", "_actor_manager", "_started_actors"):
        assert f"self.{name} " in source or f"self.{name}:" in source, name
    compat.keep_starting_actors()
    patched = TuneController._maybe_reuse_cached_actor
    assert patched._keeps_starting_actors and patched.__wrapped__.__name__ == "_maybe_reuse_cached_actor"
    compat.keep_starting_actors()  # once per process
    assert TuneController._maybe_reuse_cached_actor is patched


def test_restored_tuners_take_fresh_callbacks():
    tuner = tune.Tuner(lambda config: None)
    marker = tune.Callback()
    compat.set_restored_callbacks(tuner, [marker])
    assert tuner._local_tuner.get_run_config().callbacks == [marker]


def test_a_tuners_search_algorithm_is_the_one_it_was_given():
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    limiter = ConcurrencyLimiter(OptunaSearch(), max_concurrent=2)
    tuner = tune.Tuner(lambda config: None, tune_config=tune.TuneConfig(search_alg=limiter))
    assert compat.restored_search_alg(tuner) is limiter


def test_a_tuner_without_the_internal_is_refused():
    with pytest.raises(UsageError, match="Tuner changed"):
        compat.set_restored_callbacks(object(), [])
    with pytest.raises(UsageError, match="Tuner changed"):
        compat.restored_search_alg(object())


def test_tune_still_spares_preempted_trials_the_failure_count():
    """ray-project/ray#41609: an actor lost with a drained (pre-empted) node is not counted against max_failures;
    `failures_counted` reads the count Tune keeps."""
    import inspect
    from types import SimpleNamespace

    from ray.tune.experiment import Trial

    source = inspect.getsource(Trial._handle_ray_actor_error)
    assert "exc.preempted" in source and "num_failures += 1" in source
    assert compat.failures_counted(SimpleNamespace(run_metadata=SimpleNamespace(num_failures=2))) == 2
    with pytest.raises(UsageError, match="Trial changed"):
        compat.failures_counted(object())


def test_the_gcs_client_still_drains_nodes_as_preempted():
    import inspect

    from ray._raylet import GcsClient, InnerGcsClient
    from ray.core.generated import autoscaler_pb2

    assert autoscaler_pb2.DrainNodeReason.Value("DRAIN_NODE_REASON_PREEMPTION")
    assert GcsClient and "drain_node" in dir(InnerGcsClient)
    assert "drain_node" in inspect.getsource(local_workers.drain_node)


def test_tune_still_caches_trial_actors_where_the_drain_patch_looks():
    import inspect

    from ray._raylet import InnerGcsClient
    from ray.tune.execution.tune_controller import TuneController

    assert "get_draining_nodes" in dir(InnerGcsClient)
    compat.skip_draining_nodes(set(), "node")
    patched = TuneController._maybe_cache_trial_actor
    assert list(inspect.signature(patched.__wrapped__).parameters) == ["self", "trial"]
    assert "_actor_cache.cache_object" in inspect.getsource(patched.__wrapped__)
    compat.skip_draining_nodes(set(), "node")  # again: wraps the original, not the patch
    assert TuneController._maybe_cache_trial_actor.__wrapped__ is patched.__wrapped__


def stub_trial():
    from ray.tune.experiment.trial import Trial

    return Trial("__stub", stub=True)


def test_attempts_lost_with_their_node_are_spared_up_to_the_limit(monkeypatch):
    """An actor error whose node was lost is not counted against max_failures, up to the limit per trial; one whose
    node lives (the trial's own crash) is, and so is any error past the limit."""
    from ray.exceptions import ActorUnavailableError
    from ray.tune.experiment.trial import Trial

    from search.searching.tuning import LOST_NODES_SPARED

    compat.spare_trials_lost_with_their_node(LOST_NODES_SPARED)
    monkeypatch.setattr(Trial, "local_path", None)  # a stub trial has no folder to write its error into
    node_lost = [True]
    monkeypatch.setattr(compat, "lost_with_its_node", lambda exc: node_lost[0])
    trial, error = stub_trial(), ActorUnavailableError("Socket closed", None)
    for _ in range(LOST_NODES_SPARED):
        trial.handle_error(error)
    assert compat.failures_counted(trial) == 0
    trial.handle_error(error)
    assert compat.failures_counted(trial) == 1, "past the limit a lost node counts"
    node_lost[0] = False
    other = stub_trial()
    other.handle_error(error)
    assert compat.failures_counted(other) == 1, "an actor lost on a living node is the trial's failure"


def test_a_lost_node_is_one_the_gcs_has_dead_or_whose_raylet_takes_no_connection(monkeypatch):
    """`lost_with_its_node` asks where the actor ran, then the GCS and the node's raylet port (a real socket)."""
    import socket

    import ray
    from ray.exceptions import ActorDiedError, RayTaskError

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: a connection is refused
    nodes = {
        "alive": {"NodeID": "alive", "Alive": True, "NodeManagerAddress": "127.0.0.1",
                  "NodeManagerPort": listening.getsockname()[1]},
        "gone": {"NodeID": "gone", "Alive": True, "NodeManagerAddress": "127.0.0.1",
                 "NodeManagerPort": closed.getsockname()[1]},
        "dead": {"NodeID": "dead", "Alive": False, "NodeManagerAddress": "127.0.0.1", "NodeManagerPort": 1},
    }  # fmt: skip
    monkeypatch.setattr(ray._private.state, "actors", lambda actor_id: {"Address": {"NodeID": actor_id}})
    monkeypatch.setattr(ray, "nodes", lambda: list(nodes.values()))
    try:
        lost = {name: compat.lost_with_its_node(_actor_error(name)) for name in nodes}
        assert lost == {"alive": False, "gone": True, "dead": True}
        wrapped = RayTaskError("train", "traceback", _actor_error("gone"))
        assert compat.lost_with_its_node(wrapped), "a task error caused by the actor's loss"
        assert not compat.lost_with_its_node(ValueError("the trial raised"))
        assert not compat.lost_with_its_node(ActorDiedError()), "no actor id: nothing to ask"
    finally:
        listening.close()
        closed.close()


def _actor_error(node: str):
    from ray.exceptions import RayActorError

    return RayActorError(actor_id=node)
