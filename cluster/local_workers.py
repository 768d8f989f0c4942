"""`cluster/local.py add-worker` and `remove-worker`: a running local cluster grows and shrinks under a search.

remove-worker drains the node as pre-empted (`drain_node`) with a deadline `--grace` seconds away: its running trials
go on, and what still runs at the deadline resumes elsewhere from its last kept fold, not counted in `max_failures`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

from cluster import local_steps as steps
from cluster.processes import group_members, process_alive, processes_mentioning, stop_processes
from search.common.errors import CommandError

POLL_S = 0.5
QUIET_POLLS = 3  # polls in a row with no running trial task before a draining node counts as idle


def live_state(state_dir: Path) -> dict:
    """The state of a cluster that is up; CommandError otherwise."""
    state = steps.read_state(state_dir)
    if state is None or not any(process_alive(p["pid"]) for p in state["processes"]):
        raise CommandError(f"no cluster is up from {state_dir}: `python cluster/local.py up` first")
    return state


def dashboard_of(state: dict) -> tuple[str, str]:
    """The cluster's dashboard address and token."""
    return f"http://127.0.0.1:{state['ports']['dashboard']}", Path(state["token_path"]).read_text().strip()


def running_tasks(dashboard: str, token: str, node_id: str) -> list[str]:
    """The names of the tasks running on a node, from the state API; an unanswered request counts as busy."""
    query = [("limit", "100"), ("detail", "false")]
    for key, value in (("node_id", node_id), ("state", "RUNNING")):
        query += [("filter_keys", key), ("filter_predicates", "="), ("filter_values", value)]
    tasks = steps.state_api(dashboard, token, f"tasks?{urllib.parse.urlencode(query)}")
    return ["(no answer)"] if tasks is None else [t.get("name", "") for t in tasks]


def worker_numbers(state: dict) -> list[int]:
    """The numbers of the worker nodes the state records (`ray-worker-<n>`)."""
    return [int(m[1]) for p in state["processes"] if (m := re.fullmatch(r"ray-worker-(\d+)", p["name"]))]


@contextlib.contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold the state dir's lock: several add-worker and remove-worker commands may run at once."""
    with open(state_dir / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def add_worker(args: argparse.Namespace) -> None:
    """Start one more worker node and wait until the head lists it."""
    state_dir = args.state_dir.resolve()
    with state_lock(state_dir):
        state = live_state(state_dir)
        number = max([*worker_numbers(state), state.get("last_worker", 0)]) + 1  # never a removed worker's number
        state["last_worker"] = number
        launch = steps.Launch(state, steps.process_env(state), time.monotonic() + args.timeout)
        steps.start_worker(launch, number, state["worker_sizes"])
    dashboard, token = dashboard_of(state)
    try:
        launch.wait(f"worker {number}", lambda: node_of(dashboard, token, number, missing_ok=True) is not None)
    except BaseException:
        with state_lock(state_dir):
            state = steps.read_state(state_dir)
            stop_worker(state, number)
            steps.write_state(state_dir, state)
        raise
    with state_lock(state_dir):
        state = steps.read_state(state_dir)
        state["workers"] = len(worker_numbers(state))
        steps.write_state(state_dir, state)
    print(f"worker {number} joined: {state['workers']} worker node(s)")


def node_of(dashboard: str, token: str, number: int, missing_ok: bool = False) -> dict | None:
    """The alive Ray node labelled `worker=<number>` (None if there is none and `missing_ok`)."""
    for node in steps.alive_nodes(dashboard, token):
        if (node.get("labels") or {}).get("worker") == str(number):
            return node
    if missing_ok:
        return None
    raise CommandError(f"worker {number} is not an alive node of this cluster")


def drain_node(address: str, node_id: str, deadline_s: float, message: str) -> tuple[bool, str]:
    """Drain node `node_id` (hex) as pre-empted, `deadline_s` seconds from now; (accepted, rejection message).
    Ray's Python API has no drain call: its hidden `ray drain-node` command makes the autoscaler's GCS request."""
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    command = [ray_bin, "drain-node", "--address", address, "--node-id", node_id, "--reason",
               "DRAIN_NODE_REASON_PREEMPTION", "--reason-message", message,
               "--deadline-remaining-seconds", str(max(0, round(deadline_s)))]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return done.returncode == 0, (lines[-1] if lines else "")[:500]


def remove_worker(args: argparse.Namespace) -> None:
    """Drain a worker node (`--worker`, default the last one added), wait for it, stop it."""
    state_dir = args.state_dir.resolve()
    state = live_state(state_dir)
    numbers = worker_numbers(state)
    number = args.worker if args.worker is not None else max(numbers, default=0)
    if number not in numbers:
        raise CommandError(f"no worker {number} in this cluster (workers: {numbers or 'none'})")
    dashboard, token = dashboard_of(state)
    node = node_of(dashboard, token, number)
    os.environ.update({k: v for k, v in steps.process_env(state).items() if k.startswith("RAY_AUTH")})
    accepted, why = drain_node(f"127.0.0.1:{state['ports']['ray']}", node["node_id"], args.grace,
                               f"cluster/local.py remove-worker {number}")  # fmt: skip
    if not accepted:
        raise CommandError(f"Ray refused to drain worker {number}: {why}")
    print(f"worker {number} draining: no new trials; up to {args.grace:.0f} s for its running ones", flush=True)
    deadline, quiet = time.monotonic() + args.grace, 0
    while time.monotonic() < deadline and quiet < QUIET_POLLS:
        quiet = quiet + 1 if not running_tasks(dashboard, token, node["node_id"]) else 0
        time.sleep(POLL_S)
    with state_lock(state_dir):
        state = steps.read_state(state_dir)
        stop_worker(state, number)
        state["workers"] = len(worker_numbers(state))
        steps.write_state(state_dir, state)
    left = "idle" if quiet >= QUIET_POLLS else "at its deadline; its trials move to other nodes"
    print(f"worker {number} removed ({left}): {state['workers']} worker node(s)")


def stop_worker(state: dict, number: int) -> None:
    """Stop worker `number`'s processes by PID (its group and its temp dir's) and drop it from the state."""
    name = f"ray-worker-{number}"
    entry = next(p for p in state["processes"] if p["name"] == name)
    node_dir = os.path.join(state["ray_temp_root"], name.removeprefix("ray-"))
    left = stop_processes([entry["pid"]], processes_mentioning(node_dir + os.sep), timeout=30)
    if left:
        raise CommandError(f"processes {left} of worker {number} did not stop")
    state["processes"] = [p for p in state["processes"] if p["name"] != name]


def kill_hard(state: dict, name: str) -> int:
    """SIGKILL every process of worker `name`, as a machine that vanished; returns how many."""
    leader = next(p["pid"] for p in state["processes"] if p["name"] == name)
    node_dir = os.path.join(state["ray_temp_root"], name.removeprefix("ray-")) + os.sep
    pids = set(group_members(leader)) | set(processes_mentioning(node_dir)) | {leader}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(pids)
