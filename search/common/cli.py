"""What the three command lines share: one-line flag errors and MLflow without its chatter."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from search.common.errors import UsageError

# No telemetry, no "View run at" line (and the `runs/get` behind it), no progress bars; fail over to the project's
# own retries instead of MLflow's minutes of them.
QUIET_MLFLOW = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose bad flags are a UsageError of one line, without the usage block."""

    def __init__(self, command: str, **kwargs) -> None:
        super().__init__(prog=f"python search/{command}.py", **kwargs)

    def error(self, message: str):  # noqa: D102 - argparse's hook
        raise UsageError(f"{message} (see --help)")


def check_writable(path: Path, flag: str) -> None:
    """Refuse, as bad input naming `flag` and the folder, a folder that cannot be made or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write-check"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        problem = exc.strerror or exc
        raise UsageError(f"{flag} {path} is not writable ({problem}): choose a folder you can write") from None


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """MLflow without telemetry, run links and progress bars for the duration of a command."""
    saved = {k: os.environ.get(k) for k in QUIET_MLFLOW}
    for key, value in QUIET_MLFLOW.items():
        os.environ.setdefault(key, value)
    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
