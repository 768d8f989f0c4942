"""`--time-budget DURATION` (`90s`, `10m`, `2h`): no trial starts once it is spent, and the running ones are stopped
at their next report, as waiting for the slowest could overrun the budget by the longest fit (one in the middle of a
fit has Tune's grace of 10 s before its worker is killed). The clock starts with the command."""

from __future__ import annotations

import re
import time
from typing import Any

from ray.tune.stopper import Stopper

from search.common import contract as c
from search.common.errors import UsageError

UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> float:
    """Seconds in `90s`, `10m`, `1.5h` or a plain number of seconds; UsageError names the form otherwise."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text or "")
    seconds = float(found[1]) * UNITS[found[2] or "s"] if found else 0.0
    if seconds <= 0:
        raise UsageError(f"--time-budget {text!r} is not a duration: give one such as 90s, 10m or 2h")
    return seconds


def say_duration(seconds: float) -> str:
    """`1h 05m`, `10m 00s`, `45s`: a budget as people read it."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class TimeBudget(Stopper):
    """Stop all trials once `seconds` have passed since `started` (a `time.monotonic()` reading)."""

    code = c.TIME_BUDGET

    def __init__(self, seconds: float, started: float | None = None):
        self.seconds = seconds
        self.started = time.monotonic() if started is None else started
        self.fired = False

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        return False

    def stop_all(self) -> bool:
        self.fired = self.fired or time.monotonic() - self.started >= self.seconds
        return self.fired

    def left_s(self) -> float:
        """Seconds of the budget left."""
        return max(self.seconds - (time.monotonic() - self.started), 0.0)

    def reason(self) -> str:
        """One line: why the search ended."""
        return f"its time budget of {say_duration(self.seconds)} (--time-budget) was spent"

    def __getstate__(self) -> dict:  # the time spent, not a clock reading: a resumed search has what was left
        return {**self.__dict__, "started": time.monotonic() - self.started}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, started=time.monotonic() - state["started"])


class Ending(Stopper):
    """The stoppers that can end a search early (`--plateau`, `--time-budget`); the first to fire is the reason."""

    def __init__(self, *stoppers: Stopper | None):
        self.stoppers = [s for s in stoppers if s is not None]
        self.first: Stopper | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        for stopper in self.stoppers:
            stopper(trial_id, result)
        return False

    def stop_all(self) -> bool:
        for stopper in self.stoppers:
            if stopper.stop_all() and self.first is None:
                self.first = stopper
        return self.first is not None

    @property
    def fired(self) -> bool:
        return self.first is not None or any(s.fired for s in self.stoppers)

    @property
    def code(self) -> str:
        """The stop reason recorded on the parent run (`contract.STOP_REASONS`)."""
        first = self.first or next((s for s in self.stoppers if s.fired), None)
        return first.code if first is not None else c.NUM_SAMPLES

    def reason(self) -> str:
        """One line: why the search ended."""
        first = self.first or next((s for s in self.stoppers if s.fired), None)
        return first.reason() if first is not None else ""

    def budget_left_s(self) -> float | None:
        """Seconds left of `--time-budget`, or None without one."""
        budget = next((s for s in self.stoppers if isinstance(s, TimeBudget)), None)
        return budget.left_s() if budget is not None else None

    def replay(self, trials: list) -> None:
        """Count an interrupted search's trials in the stoppers that count them (`Plateau.replay`)."""
        for stopper in self.stoppers:
            if hasattr(stopper, "replay"):
                stopper.replay(trials)
