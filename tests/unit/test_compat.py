"""search/common/compat.py's guards: an unknown Ray refused in one line, the patches applied once."""

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


def test_patch_tune_patches_once_however_often_it_is_called():
    """The driver's one call; a second (a second search in the process) changes nothing. What each patch does to
    Tune is tested against Tune as it ships: tests/integration/test_compat_patches.py."""
    from ray.tune.execution.tune_controller import TuneController

    compat.patch_tune()
    names = ("_maybe_reuse_cached_actor", "_actor_failed", "_trial_task_failure")
    patched = [getattr(TuneController, name) for name in names]
    assert all(hasattr(method, "__wrapped__") for method in patched)
    compat.patch_tune()
    assert patched == [getattr(TuneController, name) for name in names]
