"""Process and network helpers shared by `cluster/local.py`, the tests and the benchmarks (psutil underneath)."""

from __future__ import annotations

import contextlib
import os
import random
import socket
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from search.common.probes import healthy, tcp_connect

GONE = (psutil.NoSuchProcess, psutil.ZombieProcess)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on now, below the kernel's ephemeral range where it can: one that
    `bind(0)` hands out may be handed out again before the server it was chosen for binds it."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    for port in random.SystemRandom().sample(range(10000, low), 20) if low > 10100 else ():
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `host:port`."""
    try:
        tcp_connect(host, port, timeout=0.5)
    except OSError:
        return True
    return False


def wait_for_http(url: str, timeout: float, headers: dict[str, str] | None = None) -> bool:
    """Poll `url` until it answers 200 or `timeout` seconds pass; True when it answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url, 2, headers):
            return True
        time.sleep(0.3)
    return False


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except GONE:
        return False


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone."""
    try:
        return _running(psutil.Process(pid))
    except GONE:
        return False


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in process group `pgid`."""
    members = []
    for process in psutil.process_iter():
        with contextlib.suppress(ProcessLookupError, *GONE):
            if os.getpgid(process.pid) == pgid and _running(process):
                members.append(process.pid)
    return members


def process_tree(pid: int) -> list[int]:
    """`pid` and all its live descendants (empty when `pid` is gone)."""
    try:
        root = psutil.Process(pid)
        return [p.pid for p in [root, *root.children(recursive=True)] if _running(p)]
    except GONE:
        return []


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text` (e.g. a cluster's own temp dir)."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if process.pid != os.getpid() and any(text in arg for arg in cmdline) and _running(process):
            found.append(process.pid)
    return found


def _handles(pids: Iterable[int]) -> list[psutil.Process]:
    handles = []
    for pid in pids:
        with contextlib.suppress(*GONE):
            handles.append(psutil.Process(pid))
    return handles


def family(leaders: Iterable[int], extra_pids: Iterable[int] = ()) -> list[int]:
    """The live processes of `leaders`: their trees and their process groups, and `extra_pids` still alive."""
    pids = {p for leader in leaders for p in (*process_tree(leader), *group_members(leader))}
    return sorted(pids | {p for p in extra_pids if process_alive(p)})


def stop_processes(leaders: Iterable[int], extra_pids: Iterable[int] = (), timeout: float = 30.0) -> list[int]:
    """Stop `leaders` with everything they started, and `extra_pids`; returns the PIDs still alive (normally none).
    SIGTERM goes to the leaders only, which stop their children in order (signalling a whole Ray node at once makes
    its shutdown hang); what is left after `timeout` seconds is killed."""
    leaders, extra_pids = list(leaders), list(extra_pids)
    own = family(leaders)
    targets = _handles(family(leaders, extra_pids))
    first = {*leaders, *(set(extra_pids) - set(own))}  # a leader's own children are its to stop
    for process in targets:
        if process.pid in first:
            with contextlib.suppress(*GONE):
                process.terminate()
    _, left = psutil.wait_procs(targets, timeout=timeout)
    left += _handles(p for p in family(leaders) if p not in {t.pid for t in targets})  # started meanwhile
    for process in left:
        with contextlib.suppress(*GONE):
            process.kill()
    _, left = psutil.wait_procs(left, timeout=5)
    return sorted(p.pid for p in left if _running(p))


def stop_process_group(pid: int, timeout: float = 15.0) -> None:
    """Stop the process started as group leader `pid` and everything it started (see `stop_processes`)."""
    stop_processes([pid], timeout=timeout)
