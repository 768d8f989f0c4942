"""The search's Optuna study journal: one append-only file in Optuna's journal format, written by the driver alone.

Optuna's `JournalFileBackend` takes a lock file and calls fsync for every record it appends: a trial writes about
ten records (created, each parameter, the result), and each fsync waits on the disk in the driver's loop (the
journal's share of the driver's time: BENCHMARKS.md, "Driver cost per trial"). Only the driver writes a search's
study, so `DriverJournal` keeps the file open and appends without the lock; each record is flushed to the operating
system, so a killed driver loses nothing (`--resume`, `optuna.load_study` and optuna-dashboard read the file as
Optuna writes it); only a crash of the machine itself can lose the last records, which `--resume` then runs again.
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
