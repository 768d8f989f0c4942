"""Small process and network helpers shared by `cluster/local.py` and the tests: ports, health checks, stopping."""

from __future__ import annotations

import os
import signal
import socket
import time
import urllib.error
import urllib.request


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on `host:port`."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0


def wait_for_http(url: str, timeout: float, headers: dict[str, str] | None = None) -> bool:
    """Poll `url` until it answers 200 or `timeout` seconds pass; True when it answered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(request, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        time.sleep(0.3)
    return False


def stop_process_group(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL what is left after `timeout` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            try:  # reap it if it is our child
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            time.sleep(0.2)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: state, ppid, pgrp, session, ...; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def process_alive(pid: int) -> bool:
    """True while `pid` runs; a zombie counts as gone."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """PIDs of the live processes in process group `pgid` (Linux /proc)."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def processes_mentioning(text: str) -> list[int]:
    """PIDs of live processes whose command line contains `text` (e.g. a cluster's own temp dir)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if text.encode() in cmdline.read() and process_alive(int(entry)):
                    found.append(int(entry))
        except OSError:
            pass
    return found


def stop_pids(pgids: list[int], extra_pids: list[int] = (), timeout: float = 30.0) -> list[int]:
    """Stop the process groups led by `pgids`, and the processes `extra_pids`; returns the PIDs still alive.

    First SIGTERM to each leader only, which lets `ray start --block` and `mlflow server` stop their own children
    in order (signalling a whole Ray group at once makes its shutdown hang); then SIGTERM to what is left of the
    groups after `timeout` seconds, then SIGKILL.
    """

    def alive() -> list[int]:
        return sorted({p for g in pgids for p in group_members(g)} | {p for p in extra_pids if process_alive(p)})

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while (left := alive()) and time.monotonic() < deadline:
            for pid in left:
                try:  # reap it if it is our child
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
            time.sleep(0.2)
        return not alive()

    for pid in pgids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if wait(timeout):
        return []
    for sig, seconds in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        for pgid in pgids:
            try:
                os.killpg(pgid, sig)
            except ProcessLookupError:
                pass
        for pid in extra_pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        if wait(seconds):
            return []
    return alive()
