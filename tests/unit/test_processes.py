"""cluster/processes.py on real processes: a leader with children that ignore SIGTERM or leave its session is
stopped whole; the sockets a process tree listens on are found (tests/sockets.py); zombies count as gone."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import time

import psutil
from sockets import listening_sockets

from cluster.processes import family, free_port, process_alive, process_tree, stop_process_group, stop_processes

# A leader that starts a child ignoring SIGTERM (same session) and a child in a session of its own that listens on
# a loopback port; it prints their PIDs and the port, then sleeps. SIGTERM ends the leader alone.
LEADER = textwrap.dedent(
    """
    import socket, subprocess, sys, time
    stubborn = subprocess.Popen([sys.executable, "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(1, flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True)
    stubborn.stdout.readline()
    runaway = subprocess.Popen([sys.executable, "-c",
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen();"
        "print(s.getsockname()[1], flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    port = runaway.stdout.readline().strip()
    print(stubborn.pid, runaway.pid, port, flush=True)
    time.sleep(600)
    """
)


def start_leader() -> tuple[subprocess.Popen, int, int, int]:
    leader = subprocess.Popen([sys.executable, "-c", LEADER], stdout=subprocess.PIPE, text=True, start_new_session=True)
    stubborn, runaway, port = (int(x) for x in leader.stdout.readline().split())
    return leader, stubborn, runaway, port


def test_stop_processes_stops_a_leader_with_everything_it_started():
    leader, stubborn, runaway, _ = start_leader()
    try:
        assert {leader.pid, stubborn, runaway} <= set(family([leader.pid]))
        assert set(process_tree(leader.pid)) == {leader.pid, stubborn, runaway}
        left = stop_processes([leader.pid], timeout=2)
        assert left == []
        assert not any(process_alive(p) for p in (leader.pid, stubborn, runaway))
    finally:
        for pid in (leader.pid, stubborn, runaway):
            if process_alive(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)


def test_listening_sockets_of_a_tree():
    leader, stubborn, runaway, port = start_leader()
    try:
        found = [x for x in listening_sockets(family([leader.pid])) if x.port == port]
        assert [(x.pid, x.ip) for x in found] == [(runaway, "127.0.0.1")]
        assert "socket" in found[0].cmdline
    finally:
        assert stop_processes([leader.pid], timeout=2) == []
    assert listening_sockets([leader.pid, runaway]) == [], "a gone process holds no socket"


def test_a_zombie_is_gone_and_stopping_the_gone_is_quiet():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while process_alive(child.pid) and time.monotonic() < deadline:  # it exits; unreaped, it stays a zombie
        time.sleep(0.05)
    assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE
    assert not process_alive(child.pid)
    assert process_tree(child.pid) == []
    stop_process_group(child.pid, timeout=1)
    child.wait(5)
    assert not process_alive(child.pid)


def test_free_ports_lie_below_the_ephemeral_range_and_are_free():
    """A chosen port is not one `bind(0)` could hand to another process before the server binds it."""
    low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(10000 <= p < low for p in ports) and len(ports) > 10, ports
    for port in ports:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
