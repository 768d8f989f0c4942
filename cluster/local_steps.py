"""The state `cluster/local.py` keeps in its state dir, and the steps of its `up`, each one function."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import DEVNULL, STDOUT, Popen

from cluster.processes import family, free_port, port_is_free, processes_mentioning, stop_processes, wait_for_http
from search.common.errors import CommandError

ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "state.json"


def read_state(state_dir: Path) -> dict | None:
    """The state `up` recorded, or None when there is none."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not valid JSON ({exc}); remove it after checking no cluster runs") from None


def write_state(state_dir: Path, state: dict) -> None:
    """Record the state atomically, so a crash of `up` still leaves what `down` needs."""
    tmp = state_dir / f".{STATE_FILE}.tmp"
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(state_dir / STATE_FILE)


def live_pids(state: dict) -> list[int]:
    """PIDs still alive of the processes the state records (their trees and groups) and in its Ray temp dir."""
    temp_root = state.get("ray_temp_root")
    return family([p["pid"] for p in state.get("processes", [])], processes_mentioning(temp_root) if temp_root else [])


def exports(state: dict) -> dict[str, str]:
    """The variables a driver (search/run.py, ray job submit, the MLflow client) needs."""
    ports = state["ports"]
    return {
        "RAY_ADDRESS": f"127.0.0.1:{ports['ray']}",
        "MLFLOW_TRACKING_URI": f"http://127.0.0.1:{ports['mlflow']}",
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": state["token_path"],
    }


def state_api(dashboard: str, token: str, query: str) -> list[dict] | None:
    """The rows Ray's state API answers to `query` (`nodes?limit=1000`, say), None when it does not answer."""
    request = urllib.request.Request(f"{dashboard}/api/v0/{query}", headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError):
        return None


def alive_nodes(dashboard: str, token: str) -> list[dict]:
    """The ALIVE nodes the dashboard's state API lists (empty when it does not answer)."""
    return [n for n in state_api(dashboard, token, "nodes?limit=1000") or [] if n.get("state") == "ALIVE"]


def forget_dead_cluster(state_dir: Path) -> None:
    """Refuse when a cluster from `state_dir` is up; forget one that died without `down`."""
    previous = read_state(state_dir)
    if previous and live_pids(previous):
        raise CommandError(f"a cluster from {state_dir} is already up: `python cluster/local.py down` first")
    if previous:
        shutil.rmtree(previous.get("ray_temp_root") or "/nonexistent", ignore_errors=True)
        (state_dir / STATE_FILE).unlink()


def check_flags(args: argparse.Namespace) -> dict[str, int]:
    """Check the sizes and the ports (distinct, free) the flags ask for; returns the ports, plus free metrics ones."""
    if args.workers < 1 or args.cpus_per_worker < 1 or args.head_cpus < 0:
        raise CommandError("--workers and --cpus-per-worker must be 1 or more, --head-cpus 0 or more")
    names = ("mlflow", "ray", "dashboard", "ray_client")
    ports = {name: getattr(args, f"{name}_port") for name in names}
    if len(set(ports.values())) != len(ports):
        raise CommandError(f"the ports must differ: {ports}")
    for name, port in ports.items():
        if not port_is_free(port):
            flag = "--" + name.replace("_", "-") + "-port"
            raise CommandError(f"port {port} ({flag}) is taken on 127.0.0.1: free it or choose another {flag}")
    # Ray's Prometheus endpoints of the dashboard and the autoscaler have fixed ports (44227, 44217) unless these
    # variables say otherwise: free ones, so that two clusters on one machine do not fight over them.
    return {**ports, "dashboard_metrics": free_port(), "autoscaler_metrics": free_port()}


def write_token(state_dir: Path) -> Path:
    """Make logs/ and mlflow/ in `state_dir` and a fresh token only its owner reads; returns the token's path."""
    for sub in ("logs", "mlflow"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    token_path = state_dir / "token"
    token_path.unlink(missing_ok=True)
    with os.fdopen(os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(secrets.token_hex(32))
    return token_path


def record_state(state_dir: Path, token_path: Path, ports: dict[str, int], workers: int) -> dict:
    """Make the Ray temp dir and record the new cluster's state (no processes yet); returns the state."""
    # Ray's unix sockets live under its temp dir and must stay short: a private dir under /tmp, not the state dir.
    temp_root = tempfile.mkdtemp(prefix="ray-local-", dir="/tmp")
    state = {
        "state_dir": str(state_dir),
        "token_path": str(token_path),
        "ray_temp_root": temp_root,
        "ports": ports,
        "workers": workers,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "processes": [],
    }
    write_state(state_dir, state)
    return state


def process_env(state: dict) -> dict[str, str]:
    """The environment of the cluster's processes: this one's, with the cluster's token and metrics ports."""
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_TOKEN", "RAY_ADDRESS")}
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": state["token_path"]}
    # No drain on SIGTERM: `down` would otherwise wait Ray's 30 s drain for Serve proxies this cluster never runs.
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    env["DASHBOARD_METRIC_PORT"] = str(state["ports"]["dashboard_metrics"])
    env["AUTOSCALER_METRIC_PORT"] = str(state["ports"]["autoscaler_metrics"])
    return env


@dataclass
class Launch:
    """A cluster being started: its state (recorded at each start), its processes' environment, a deadline."""

    state: dict
    env: dict[str, str]
    deadline: float
    processes: dict[str, Popen] = field(default_factory=dict)

    def start(self, name: str, command: list[str], **ports: int) -> None:
        """Start `command` in its own session (PID = process group), logging to logs/<name>; record it with `ports`."""
        log_path = Path(self.state["state_dir"]) / "logs" / f"{name}.log"
        with open(log_path, "ab") as log:
            self.processes[name] = Popen(
                command, stdout=log, stderr=STDOUT, stdin=DEVNULL, env=self.env, start_new_session=True
            )
        entry = {"name": name, "pid": self.processes[name].pid, "log": str(log_path), "command": command}
        self.state["processes"].append({**entry, "ports": ports} if ports else entry)
        write_state(Path(self.state["state_dir"]), self.state)

    def wait(self, what: str, ready: Callable[[], object]) -> None:
        """Poll `ready` until it is true; CommandError when a process exits first or the deadline passes."""
        while not ready():
            for name, process in self.processes.items():
                if process.poll() is not None:
                    log = next(p["log"] for p in self.state["processes"] if p["name"] == name)
                    raise CommandError(f"{name} exited with code {process.returncode} while starting; see {log}")
            if time.monotonic() > self.deadline:
                raise CommandError(f"{what} was not up in time; see the logs in {self.state['state_dir']}/logs")
            time.sleep(0.5)


def start_mlflow(launch: Launch, backend_store_uri: str | None) -> None:
    """Start the MLflow server on 127.0.0.1, its data in the state dir's mlflow/."""
    state_dir, port = launch.state["state_dir"], launch.state["ports"]["mlflow"]
    command = [sys.executable, str(ROOT / "cluster" / "mlflow_server.py"), "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", f"{state_dir}/mlflow"]
    command += ["--backend-store-uri", backend_store_uri] if backend_store_uri else []
    launch.start("mlflow", command)


def start_node(launch: Launch, object_store: int, name: str, flags: list[str], labels: str = "") -> None:
    """Start Ray node `name` (cluster/ray_node.py `flags`) with its own dashboard agent port and temp dir."""
    agent_port = free_port()
    command = [sys.executable, str(ROOT / "cluster" / "ray_node.py"), *flags]
    command += ["--dashboard-agent-listen-port", str(agent_port)] + (["--labels", labels] if labels else [])
    command += ["--temp-dir", os.path.join(launch.state["ray_temp_root"], name.removeprefix("ray-"))]
    # No --node-ip-address: `ray start` turns 127.0.0.1 into the machine's address whatever it is given, so
    # Ray's own servers listen beyond loopback (docs/cluster.md, "What listens where"); the token guards them.
    command += ["--object-store-memory", str(object_store), "--min-worker-port", "0"]
    launch.start(name, command + ["--max-worker-port", "0"], dashboard_agent=agent_port)


def start_head(launch: Launch, args: argparse.Namespace) -> None:
    """Start the Ray head: its GCS, dashboard (on 127.0.0.1) and Ray Client server on the chosen ports."""
    ports = launch.state["ports"]
    flags = ["head", "--port", str(ports["ray"]), "--dashboard-host", "127.0.0.1"]
    flags += ["--dashboard-port", str(ports["dashboard"]), "--ray-client-server-port", str(ports["ray_client"])]
    flags += ["--num-cpus", str(args.head_cpus), "--memory", "1g"]
    start_node(launch, args.object_store_memory, "ray-head", flags)


def start_worker(launch: Launch, number: int, sizes: dict) -> None:
    """Start Ray worker node `number` joining the head, labelled role=worker and worker=<number>."""
    flags = ["worker", "--address", f"127.0.0.1:{launch.state['ports']['ray']}"]
    flags += ["--num-cpus", str(sizes["cpus"]), "--memory", str(sizes["memory"])]
    start_node(launch, sizes["object_store"], f"ray-worker-{number}", flags, labels=f"role=worker,worker={number}")


def wait_for_nodes(launch: Launch, count: int) -> None:
    """Wait until the dashboard lists `count` alive Ray nodes (1: the head)."""
    dashboard = f"http://127.0.0.1:{launch.state['ports']['dashboard']}"
    token = Path(launch.state["token_path"]).read_text()
    what = "the Ray head" if count == 1 else f"{count} Ray nodes"
    launch.wait(what, lambda: len(alive_nodes(dashboard, token)) >= count)


def wait_for_mlflow(launch: Launch) -> None:
    """Wait until the MLflow server answers its health check."""
    health = f"{exports(launch.state)['MLFLOW_TRACKING_URI']}/health"
    launch.wait("the MLflow server", lambda: wait_for_http(health, timeout=1))


def roll_back(state: dict) -> None:
    """Stop by PID everything `state` records and what runs in its Ray temp dir; remove the state and the token."""
    stop_processes([p["pid"] for p in state["processes"]], processes_mentioning(state["ray_temp_root"]))
    shutil.rmtree(state["ray_temp_root"], ignore_errors=True)
    (Path(state["state_dir"]) / STATE_FILE).unlink(missing_ok=True)
    Path(state["token_path"]).unlink(missing_ok=True)


def write_env_file(state: dict) -> None:
    """Write env.sh in the state dir: the exports a shell sources."""
    lines = [f"export {k}={v}" for k, v in exports(state).items()]
    (Path(state["state_dir"]) / "env.sh").write_text("\n".join(lines) + "\n")
