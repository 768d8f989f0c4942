"""Process-wide settings of the three commands (environment, loggers, log and warning filters, a Ctrl-C never lost),
made by `apply_process_settings(command)` at each entrypoint's start."""

from __future__ import annotations

import logging
import os
import sys
import warnings
from dataclasses import dataclass, field

# No telemetry, no "View run at" line (and the `runs/get` behind it), no progress bars.
QUIET_MLFLOW = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
# The search's tracker retries with its own backoff (search/searching/tracking.py) instead of MLflow's minutes.
MLFLOW_HTTP = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Tune's lines that contradict the project's own: where results are (MLflow holds them), how to resume (`--resume`),
# trials "not completed" when the project says interrupted or stopped, Tune's experiment-state path.
TUNE_LINES_DROPPED = (
    "Resume experiment with",
    "Tuner.restore",
    "Trials did not complete",
    "Wrote the latest version of all result files",
    "Result logdir",
    "Restoring the run from the latest experiment state file",
)


@dataclass(frozen=True)
class ProcessSettings:
    """What one command sets for its whole process."""

    defaults: dict[str, str] = field(default_factory=dict)  # environment variables a user's own value overrides
    environment: dict[str, str] = field(default_factory=dict)  # environment variables set whatever they were
    logger_levels: dict[str, int] = field(default_factory=dict)
    ignored_warnings: tuple[tuple[str, type[Warning]], ...] = ()  # (message prefix, category)


COMMON = ProcessSettings(
    defaults=QUIET_MLFLOW,
    logger_levels={
        "mlflow.store.model_registry.abstract_store": logging.WARNING,
        "mlflow.store.db.utils": logging.WARNING,  # "Creating initial MLflow database tables..."
    },
)
SEARCH = ProcessSettings(
    # No Tune result files: MLflow holds every trial, and they cost driver time (BENCHMARKS.md, "Measured once").
    # Tune sizes its queue of pending trials at start (ray-project/ray#43451); the ConcurrencyLimiter caps what is in
    # flight, so a deep queue lets the concurrency follow the cluster's CPUs as they grow.
    defaults={**MLFLOW_HTTP, "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1", "TUNE_MAX_PENDING_TRIALS_PG": "256"},
    # Tune's classic reporter, for `--verbose`: it honours the chosen columns; the newer output ignores them.
    environment={"RAY_AIR_NEW_OUTPUT": "0"},
    logger_levels={
        # Without the result files the ResultGrid warns per trial that it has no metrics history.
        "ray.tune.analysis.experiment_analysis": logging.ERROR,
        # Token auth and working_dir packaging lines said on every start: nothing a user can act on.
        "ray._private.authentication.authentication_token_setup": logging.ERROR,
        "ray._private.runtime_env": logging.ERROR,
        # "A new study created", "Using an existing study": the search's first line names it. Set below Optuna's root
        # logger, whose level Optuna sets to INFO as it is imported.
        "optuna.study": logging.WARNING,
        "optuna.storages": logging.WARNING,
    },
    # A trial resumed from kept folds reports steps again that the study holds from the attempt that was lost.
    ignored_warnings=(("The reported value is ignored because this `step=", UserWarning),),
)
COMMANDS = {"run": (COMMON, SEARCH), "release": (COMMON,), "report": (COMMON,)}
_applied: set[str] = set()


def apply_process_settings(command: str) -> None:
    """Make the process-wide settings of `command` (`run`, `release`, `report`); once per process and command."""
    if command in _applied:
        return
    for settings in COMMANDS[command]:
        for name, value in settings.defaults.items():
            os.environ.setdefault(name, value)
        os.environ.update(settings.environment)
        for name, level in settings.logger_levels.items():
            logging.getLogger(name).setLevel(level)
        for message, category in settings.ignored_warnings:
            warnings.filterwarnings("ignore", message=message, category=category)
    if command == "run":
        for logger in ("ray.tune.tune", "ray.tune.execution.tune_controller"):
            _add_filter(logger, DropLines(TUNE_LINES_DROPPED))
        _add_filter("ray.tune.execution.tune_controller", NotALostActor())
        if not sys.stderr.isatty():
            _add_filter("ray._private.worker", PlainText())
    if not isinstance(sys.unraisablehook, InterruptAgain):
        sys.unraisablehook = InterruptAgain(sys.unraisablehook)
    _applied.add(command)


def _add_filter(logger: str, new: logging.Filter) -> None:
    target = logging.getLogger(logger)
    if not any(type(f) is type(new) for f in target.filters):
        target.addFilter(new)


class InterruptAgain:
    """`sys.unraisablehook` that does not let a Ctrl-C be lost: a KeyboardInterrupt raised in a finalizer is only
    printed, and the command would go on; it is raised again in the main thread a moment later."""

    AFTER_S = 0.05  # long enough for the finalizer's caller to have gone on (an interrupt raised now lands in it)

    def __init__(self, previous) -> None:
        self.previous = previous

    def __call__(self, unraisable) -> None:
        if unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt):
            import _thread
            import signal
            import threading

            again = threading.Timer(self.AFTER_S, _thread.interrupt_main, (signal.SIGINT,))
            again.daemon = True  # never what keeps an ending process up
            again.start()
            return
        self.previous(unraisable)


class DropLines(logging.Filter):
    """Drop the records whose message contains one of `fragments`."""

    def __init__(self, fragments: tuple[str, ...]) -> None:
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not any(fragment in text for fragment in self.fragments)


class NotALostActor(logging.Filter):
    """Tune logs a traceback for every trial task that fails; one whose actor was lost (its node died or drained,
    its process died) is run again, and the tracker says so in one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ray.exceptions import RayActorError

        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, RayActorError)


class PlainText(logging.Filter):
    """Strip ANSI colour codes from a record: Ray colours its start-up line whatever the output is."""

    def filter(self, record: logging.LogRecord) -> bool:
        import re

        ansi = re.compile(r"\x1b\[[0-9;]*m")
        record.msg = ansi.sub("", str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(ansi.sub("", a) if isinstance(a, str) else a for a in record.args)
        return True
