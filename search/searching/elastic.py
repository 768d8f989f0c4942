"""A search on a cluster that breathes: workers that join, drain and vanish while it runs."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ray.tune.search import ConcurrencyLimiter

from search.common import contract as c

FOLLOW_EVERY_S = 1.0  # how often the driver reads the cluster's CPUs


class FoldLedger:
    """Per trial: the most folds it reported, its lost attempts, and the folds the attempts after them redid."""

    def __init__(self) -> None:
        self.reported: dict[str, int] = {}
        self.lost_at: dict[str, int] = {}
        self.redone: dict[str, int] = {}
        self.attempts_lost: dict[str, dict[str, str]] = {}  # trial id -> its lost-attempt tags so far

    def lost(self, trial_id: str, error: str) -> dict[str, str]:
        """An attempt of the trial was lost: remember how far it had reported; the trial run's tags for it."""
        self.lost_at[trial_id] = self.reported.get(trial_id, 0)
        self.redone.setdefault(trial_id, 0)
        tags = self.attempts_lost.setdefault(trial_id, {})
        tags.update(lost_tags(int(tags.get(c.LOST_ATTEMPTS, 0)) + 1, error))
        return dict(tags)

    def result(self, trial_id: str, result: dict) -> None:
        """A result of the trial: the first after a lost attempt says how many folds were taken over."""
        if trial_id in self.lost_at:
            before = self.lost_at.pop(trial_id)
            self.redone[trial_id] += max(0, before - int(result.get(c.FOLDS_RESTORED, 0)))
        self.reported[trial_id] = int(result.get(c.FOLDS_DONE, 0))

    def tags(self, trial_id: str, result: dict) -> dict[str, str]:
        """The trial run's tags at its end: lost attempts (again: one lost before its run opened has no other
        record), folds restored, folds redone."""
        tags = dict(self.attempts_lost.get(trial_id, {}))
        if int(result.get(c.FOLDS_RESTORED, 0)):
            tags[c.FOLDS_RESTORED] = str(int(result[c.FOLDS_RESTORED]))
        if trial_id in self.redone:
            tags[c.FOLDS_REDONE] = str(self.redone[trial_id])
        return tags


def lost_tags(lost: int, error: str) -> dict[str, str]:
    """The tags a lost attempt sets on its trial's run: how many were lost, and this one's error."""
    return {c.LOST_ATTEMPTS: str(lost), f"{c.LOST_ATTEMPT}_{lost}": error}


def cluster_cpus() -> int:
    """The CPUs of the cluster's live nodes, as Ray's resource view has them now."""
    import ray

    return int(ray.cluster_resources().get("CPU", 0))


class SearchLimiter(ConcurrencyLimiter):
    """The search's ConcurrencyLimiter: with `follow`, `max_concurrent` follows the cluster's CPUs (read at most every
    `every_s`), so a worker added mid-search gets trials within seconds; a trial that ended with its own error
    (`failed_result`) reaches the searcher as failed."""

    def __init__(self, searcher, max_concurrent: int, follow: bool = True, cpus: Callable[[], int] = cluster_cpus,
                 every_s: float = FOLLOW_EVERY_S):  # fmt: skip
        super().__init__(searcher, max_concurrent=max_concurrent)
        self.follow, self.cpus, self.every_s, self.checked = follow, cpus, every_s, float("-inf")

    def suggest(self, trial_id: str) -> dict | None:
        self.follow_cluster()
        return super().suggest(trial_id)

    def follow_cluster(self) -> None:
        """Set `max_concurrent` to the cluster's CPUs when they changed (with `follow`)."""
        now = time.monotonic()
        if not self.follow or 0 <= now - self.checked < self.every_s:  # a restored clock may be another process's
            return
        self.checked = now
        wanted = max(1, self.cpus())
        if wanted != self.max_concurrent:
            self.set_max_concurrency(wanted)
            print(f"cluster: {wanted} CPUs, {wanted} trials at once", flush=True)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        if c.ERROR not in result:
            super().on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        failed = error or c.ERROR in (result or {})
        super().on_trial_complete(trial_id, None if failed else result, error=failed)


def nodes_used(rows: Iterable) -> int:
    """The distinct Ray nodes the trials' results name (`node` tag)."""
    return len({row.tags.get(c.NODE) for row in rows if row.tags.get(c.NODE)})
