"""The search's Optuna study journal: one append-only file in Optuna's journal format, written by the driver alone.

Optuna's `JournalFileBackend` takes a lock file and fsyncs each of a trial's ten or so records in the driver's loop.
Only the driver writes a search's study, so `DriverJournal` appends without the lock and flushes each record to the
operating system: a killed driver loses nothing, only a crash of the machine can (`--resume` reruns those trials).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Generator
from typing import Any

from optuna.storages.journal import BaseJournalBackend, JournalFileBackend


class DriverJournal(BaseJournalBackend):
    """Optuna's journal file format, kept open and appended without a lock file or an fsync per record."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._reader = JournalFileBackend(path)
        self._file = open(path, "ab")  # noqa: SIM115 - open for the study's life, as the journal's writer
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, str]:
        return {"path": self._path}  # Tune pickles the searcher with its storage: the file is opened again

    def __setstate__(self, state: dict[str, str]) -> None:
        self.__init__(state["path"])

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        return self._reader.read_logs(log_number_from)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        with self._lock:
            self._file.write(data)
            self._file.flush()
