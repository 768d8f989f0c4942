"""The listening TCP sockets of a set of processes: what the listening-ports tests compare with docs/cluster.md."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from cluster.processes import GONE


@dataclass(frozen=True)
class Listener:
    """One listening TCP socket: who holds it and where it listens."""

    pid: int
    name: str
    cmdline: str
    ip: str
    port: int


def listening_sockets(pids: Iterable[int]) -> list[Listener]:
    """The TCP sockets in LISTEN state held by `pids` (processes that are gone are skipped)."""
    found = []
    for pid in pids:
        try:
            process = psutil.Process(pid)
            name, cmdline = process.name(), " ".join(process.cmdline())
            connections = process.net_connections(kind="tcp")
        except GONE:
            continue
        for conn in connections:
            if conn.status == psutil.CONN_LISTEN:
                found.append(Listener(pid, name, cmdline, conn.laddr.ip, conn.laddr.port))
    return found
