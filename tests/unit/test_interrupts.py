"""Ctrl-C is never lost and never lands where it breaks things: held over the steps that must not be cut (Ray
starting or stopping, the parent run being made) and acted on after them; raised again when it landed in a finalizer,
which would swallow it; and before the search started, one line that says nothing was made."""

from __future__ import annotations

import signal
import sys
import time

import pytest

from search.common.connect import held_interrupts
from search.common.settings import InterruptAgain


def test_a_ctrl_c_in_a_held_step_is_kept_for_after_it():
    before = signal.getsignal(signal.SIGINT)
    with held_interrupts() as received:
        signal.raise_signal(signal.SIGINT)
        time.sleep(0.01)  # the step goes on
    assert received == [signal.SIGINT] and signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_in_a_held_step_is_not_held():
    with pytest.raises(KeyboardInterrupt), held_interrupts() as received:
        signal.raise_signal(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)
    assert received == [signal.SIGINT]


class Finalized:
    """An object whose finalizer is running when Ctrl-C lands (as SQLAlchemy's weakref callbacks often are)."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)


def spin(seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass


@pytest.fixture
def ctrl_c_raises():
    """Python's own SIGINT handler, whatever this test process inherited (an xdist worker ignores SIGINT)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_a_ctrl_c_swallowed_by_a_finalizer_is_raised_again(monkeypatch, ctrl_c_raises):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", InterruptAgain(seen.append))
    with pytest.raises(KeyboardInterrupt):
        Finalized()  # dropped at once: its finalizer runs here
        spin(5)
    assert not seen  # not printed as "Exception ignored" either


def test_other_unraisable_errors_go_to_the_hook_it_replaced(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", InterruptAgain(seen.append))

    class Broken:
        def __del__(self):
            raise ValueError("in a finalizer")

    Broken()
    assert [u.exc_type for u in seen] == [ValueError]


def test_ctrl_c_before_the_search_started_is_one_line_that_says_nothing_was_made(monkeypatch, capsys):
    from search import run
    from search.searching import driver

    def cut(config, started=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "run_search", cut)
    assert run.main(["--num-samples", "2"]) == 130
    assert capsys.readouterr().err == f"run: {run.NOT_STARTED}\n"
