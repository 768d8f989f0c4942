"""Keep every trial slot busy when trials are shorter than starting a Ray actor.

With `reuse_actors=True`, Ray Tune (2.60) hands an idle cached actor to a pending trial even when that trial's own
actor has already been given its resources and is starting, and then kills the starting actor (see
ray-project/ray#42951). When trials take less time than an actor takes to start (about 3 s here: a Python process
importing Ray, scikit-learn and pandas), that repeats for every trial: one actor runs every trial while a second
process is started and killed again and again, so a search on two CPUs runs one trial at a time. On Iris this
happened in about half the searches and made them take 1.7x as long (`benchmarks/compare.py --same-configs`).

`keep_starting_actors()` makes Tune wait for a trial's own actor once that actor holds its resources; the cached
actor then takes the next new trial instead, so every slot gets an actor that stays.
"""

from __future__ import annotations

import functools


def keep_starting_actors() -> bool:
    """Patch Tune's controller (once per process); False when this Tune lacks the method it patches."""
    from ray.tune.execution.tune_controller import TuneController

    original = getattr(TuneController, "_maybe_reuse_cached_actor", None)
    if original is None or getattr(original, "_keeps_starting_actors", False):
        return original is not None

    @functools.wraps(original)
    def maybe_reuse_cached_actor(self, trial) -> bool:
        own = self._trial_to_actor.get(trial)
        if own is not None and self._actor_manager.is_actor_started(own) and own not in self._started_actors:
            return False  # its own actor holds resources and is starting: let it, instead of killing it
        return original(self, trial)

    maybe_reuse_cached_actor._keeps_starting_actors = True
    TuneController._maybe_reuse_cached_actor = maybe_reuse_cached_actor
    return True
