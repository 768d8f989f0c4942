"""The errors of the three commands and the one table that turns them into exit codes.

| exit | meaning |
| --- | --- |
| 0 | done |
| 1 | nothing to do, or the work failed |
| 2 | bad input, or a server that does not answer or refuses the login |
| 130 | interrupted (Ctrl-C); the work can be continued or redone |

Every command prints a refusal or a failure as one line on stderr, `<command>: <what happened and what to do>`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

DONE, FAILED, BAD_INPUT, INTERRUPTED = 0, 1, 2, 130


class CommandError(Exception):
    """The work started and failed (or a refusal with no better class): one line for the user, exit 1."""

    exit_code = FAILED


class UsageError(CommandError, ValueError):
    """Bad input: settings, flags, files or names (a search id, an experiment) that cannot work: exit 2."""

    exit_code = BAD_INPUT


class Unreachable(CommandError, ConnectionError):
    """A server (MLflow, Ray) that does not answer, cannot serve yet or refuses the credentials: exit 2."""

    exit_code = BAD_INPUT


class NothingToDo(CommandError):
    """Nothing to act on: no search yet, no finished trial, no holder of the alias, nothing within a budget: exit 1."""


class Interrupted(CommandError):
    """Stopped by Ctrl-C or a signal; the message says how to continue: exit 130."""

    exit_code = INTERRUPTED


def exit_code_of(exc: BaseException) -> int:
    """The exit code for any exception a command lets out (the table above)."""
    if isinstance(exc, CommandError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return INTERRUPTED
    if isinstance(exc, ConnectionError) or (_from_mlflow(exc) and _refused_login(exc)):
        return BAD_INPUT
    return FAILED


def one_line(exc: BaseException) -> str:
    """The exception as one line a user can act on."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if _from_mlflow(exc):
        hint = " (set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD)" if _refused_login(exc) else ""
        return f"MLflow refused the request{hint}: {_first(str(exc.message))}"
    if isinstance(exc, CommandError | ValueError | ConnectionError):
        return _first(str(exc))
    return f"failed ({exc.__class__.__name__}: {_first(str(exc))})"


def run_command(name: str, work: Callable[[], int]) -> int:
    """Run a command's work; any exception becomes one line on stderr and its exit code, never a traceback."""
    try:
        return work()
    except (Exception, KeyboardInterrupt) as exc:  # noqa: BLE001 - the one place errors become exit codes
        print(f"{name}: {one_line(exc)}", file=sys.stderr)
        return exit_code_of(exc)


def _from_mlflow(exc: BaseException) -> bool:
    """An MlflowException, told without importing MLflow: an error met while importing it (a Ctrl-C in the
    middle of the imports) leaves modules half made, which a second import trips over (a RecursionError in numpy)."""
    module = sys.modules.get("mlflow.exceptions")
    return isinstance(exc, getattr(module, "MlflowException", ()))


def _refused_login(exc: BaseException) -> bool:
    text = str(exc)
    return "401" in text or "403" in text or "Unauthorized" in text


def _first(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:300]
