"""A search on a cluster that breathes: workers that join, drain and vanish while it runs.

- `FoldLedger`: what each trial lost with a vanished worker, as its MLflow run records it: the folds its last
  attempt took over from its checkpoint (`folds_restored`) and the folds it had reported and had to fit again
  (`folds_redone`; with a checkpoint per reported fold, none).
- `SearchLimiter`: the search's concurrency limiter, which keeps the concurrency equal to the cluster's CPUs as
  workers join and leave (unless `--max-concurrent` fixed it), so a worker added mid-search gets trials within
  seconds.
- `nodes_used`: how many Ray nodes a search's trials ran on, for the parent run and the summary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from ray.tune.search import ConcurrencyLimiter

from search.common import contract as c

FOLLOW_EVERY_S = 1.0  # how often the driver reads the cluster's CPUs (one GCS call, about a millisecond)


class FoldLedger:
    """Per trial: the most folds it reported, its lost attempts, and what the attempts after them redid."""

    def __init__(self) -> None:
        self.reported: dict[str, int] = {}
        self.lost_at: dict[str, int] = {}
        self.redone: dict[str, int] = {}
        self.attempts_lost: dict[str, dict[str, str]] = {}  # trial id -> its lost-attempt tags so far

    def lost(self, trial_id: str, error: str) -> dict[str, str]:
        """An attempt of the trial was lost: remember how far it had reported; returns the trial run's tags for it
        (`lost_tags`)."""
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
        """The trial run's tags at its end: its lost attempts (again: an attempt lost before its run was opened has
        no other record), folds restored by its last attempt, folds redone (only for a trial that lost one)."""
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
    """The search's ConcurrencyLimiter, Tune's search algorithm (so a restored Tuner restores it with the rest).

    With `follow`, its `max_concurrent` follows the cluster's CPUs (at least 1), read at most once every `every_s`
    when Tune asks for a trial: the searcher then proposes as many trials as there are CPUs, and Tune places them on
    whichever nodes have room, so a worker added mid-search gets trials within seconds. And it hands the searcher a
    trial that ended with its own error (trainables/trainable.py's `failed_result`) as failed: Optuna records it so.
    """

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
