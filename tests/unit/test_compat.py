"""The guards of search/common/compat.py: each fails when the upstream code it patches changes."""

from __future__ import annotations

import pytest
import ray

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
