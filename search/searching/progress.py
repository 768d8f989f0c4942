"""How far a search is, in one line: updated in place on a terminal, plain lines every few seconds elsewhere."""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field

from ray.tune import Callback

from search.common import contract as c
from search.common.trials import Trial, number, rank_trials

PIPE_EVERY_S = 10.0  # a plain line at most this often when output is not a terminal (CI, a log file)
TERMINAL_EVERY_S = 1.0  # the elapsed time ticks on a terminal, and a change shows at once


def clock(seconds: float) -> str:
    """`m:ss`, or `h:mm:ss` from an hour."""
    minutes, secs = divmod(int(max(seconds, 0)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@dataclass
class Progress:
    """The counts of a search's trials and its best completed trial so far."""

    total: int
    metric: str = c.VAL_ACCURACY
    mode: str = "max"
    finished: int = 0  # ended without an error; `stopped` of them were cut short (ASHA, --plateau)
    stopped: int = 0
    running: int = 0
    failed: int = 0
    best: tuple[float, str] | None = None  # (score, trial name)
    leader: Trial | None = None  # the best trial's record, for the ranking rule's tie-break
    done_before: int = 0  # trials a resumed search had already done: not counted in the pace
    budget_left: float | None = None  # seconds of --time-budget left when the line is drawn

    def add_ended(self, trial: Trial, name: str) -> None:
        """Count one trial that ended without an error: the best so far if it ran every fold and scores best."""
        self.finished += 1
        if trial.outcome != c.COMPLETED:
            self.stopped += 1
            return
        score = number(trial.metrics.get(self.metric))
        if score != score:  # NaN: nothing to rank
            return
        if self.mode == "max":  # the project's ranking rule, ties broken as the summary breaks them
            better = self.leader is None or rank_trials([self.leader, trial], self.metric)[0] is trial
        else:
            better = self.best is None or score < self.best[0]
        if better:
            self.best, self.leader = (score, name), trial

    def left_s(self, elapsed: float) -> float | None:
        """Seconds left at the pace of the trials done since this run started; None before the first is done."""
        done = self.finished + self.failed
        pace = done - self.done_before
        return elapsed / pace * max(self.total - done, 0) if pace > 0 else None

    def line(self, elapsed: float, width: int | None = None, ended: bool = False) -> str:
        """`trials 12/30 finished, 2 running, 1 failed | best val_accuracy 0.9667 (0004-svm-subset) | 0:42 elapsed,
        about 1:10 left`, or a short form within `width`; `ended`: nothing is said to be left."""
        over = ended or self.finished + self.failed >= self.total
        left = None if over else self.left_s(elapsed)
        by_budget = not over and self.budget_left is not None and (left is None or self.budget_left < left)
        left = self.budget_left if by_budget else left  # the budget ends it first, or the trials do
        early = f" ({self.stopped} stopped early)" if self.stopped else ""
        of = f"/{self.total}" if self.total < c.UNTIL_BUDGET else ""  # the budget alone bounds the trials
        counts = f"{self.finished}{of} finished{early}, {self.running} running, {self.failed} failed"
        best = f"best {self.metric} {self.best[0]:.4f} ({self.best[1]})" if self.best else ""
        ahead = "" if over else ", estimating what is left" if left is None else f", about {clock(left)} left"
        ahead += " of the time budget" if by_budget else ""
        time_ = f"{clock(elapsed)} elapsed{ahead}"
        full = " | ".join(filter(None, [f"trials {counts}", best, time_]))
        if width is None or len(full) <= width:
            return full
        early = f" ({self.stopped} stopped)" if self.stopped else ""
        counts = f"{self.finished}{of} done{early}, {self.running} running, {self.failed} failed"
        time_ = clock(elapsed) + (f", ~{clock(left)} left" if left is not None else "")
        short = f"{counts} | {time_}"
        score = f" | best {self.best[0]:.4f}" if self.best else ""
        fits = [s for s in (f"{score} {self.best[1]}" if self.best else "", score) if len(short + s) <= width]
        return (short + (fits[0] if fits else ""))[:width]


@dataclass
class ProgressLine(Callback):
    """Tune's events as `Progress` on stdout: one line rewritten in place on a terminal, else a plain line every
    `PIPE_EVERY_S` at most, and one at the end."""

    total: int
    metric: str = c.VAL_ACCURACY
    mode: str = "max"
    ending: object | None = None  # the search's stoppers (time_budget.Ending): the budget left, when it has one
    progress: Progress = field(init=False)
    _seen: set[str] = field(default_factory=set, init=False, repr=False)
    _started: float = field(default=0.0, init=False, repr=False)
    _shown: float = field(default=0.0, init=False, repr=False)
    _changed: bool = field(default=True, init=False, repr=False)
    _on_line: bool = field(default=False, init=False, repr=False)
    _first_step: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        self.progress = Progress(self.total, self.metric, self.mode)

    def setup(self, **info) -> None:
        self._started = self._shown = time.monotonic()

    def on_trial_start(self, iteration: int, trials: list, trial, **info) -> None:
        self._changed = True

    def on_trial_complete(self, iteration: int, trials: list, trial, **info) -> None:
        self._ended(trial)  # those in flight when the search ends: `on_experiment_end`

    def on_trial_error(self, iteration: int, trials: list, trial, **info) -> None:
        self._changed = True

    def on_trial_recover(self, iteration: int, trials: list, trial, **info) -> None:
        self._end_line()  # the tracker says why the attempt runs again on a line of its own

    def on_step_end(self, iteration: int, trials: list, **info) -> None:
        if self._first_step:  # a resumed search's finished trials, which do not set this run's pace
            for trial in trials:
                if trial.status == "TERMINATED":
                    self._ended(trial)
            self._count(trials)
            self.progress.done_before, self._first_step = self.progress.finished + self.progress.failed, False
        now = time.monotonic()
        terminal = sys.stdout.isatty()
        due = now - self._shown >= (TERMINAL_EVERY_S if terminal else PIPE_EVERY_S)
        if (terminal and self._changed) or due:
            self._count(trials)
            self._show(now, terminal)

    def on_experiment_end(self, trials: list, **info) -> None:
        """The last count, always shown; the trials a stopper caught in flight count as ended, as in the summary."""
        if self.ending is not None and self.ending.fired:
            for trial in trials:
                if trial.status == "TERMINATED":
                    self._ended(trial, ended=True)
        self._count(trials)
        self._show(time.monotonic(), sys.stdout.isatty(), ended=True)
        self._end_line()

    def _ended(self, trial, ended: bool = False) -> None:
        if trial.trial_id not in self._seen:
            self._seen.add(trial.trial_id)
            record = Trial.from_result(trial.config, trial.last_result or {}, ended=ended)
            if record.outcome != c.FAILED:  # a trial whose own code raised ends with a failed result (_count)
                self.progress.add_ended(record, c.trial_run_name(trial.config))
        self._changed = True

    def _count(self, trials: list) -> None:
        self.progress.running = sum(t.status == "RUNNING" for t in trials)
        self.progress.failed = sum(t.status == "ERROR" or c.ERROR in (t.last_result or {}) for t in trials)

    def _show(self, now: float, terminal: bool, ended: bool = False) -> None:
        elapsed = now - self._started
        self.progress.budget_left = self.ending.budget_left_s() if self.ending is not None else None
        if terminal:
            width = shutil.get_terminal_size().columns - 1
            sys.stdout.write("\r" + self.progress.line(elapsed, width, ended) + "\x1b[K")
            self._on_line = True
        else:
            sys.stdout.write(self.progress.line(elapsed, ended=ended) + "\n")
        sys.stdout.flush()
        self._shown, self._changed = now, False

    def _end_line(self) -> None:
        if self._on_line:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self._on_line = False
