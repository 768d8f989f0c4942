"""A whole cluster as local processes: an MLflow server, a Ray head with its dashboard, N Ray worker nodes.

    python cluster/local.py up --workers 2      # prints the variables to export
    python cluster/local.py status
    python cluster/local.py down                # stops what `up` started, by PID, and nothing else

MLflow and the dashboard listen on 127.0.0.1; Ray's other servers listen beyond loopback whatever `ray start` is
told (docs/cluster.md, "What listens where"), guarded by the token.

Every node is its own `ray start` (cluster/ray_node.py) with its own CPUs, memory, temp dir and agent port; all
share one token generated for this cluster and kept in the state dir (default .cluster/, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.processes import (  # noqa: E402
    family,
    free_port,
    port_is_free,
    process_alive,
    processes_mentioning,
    stop_processes,
    wait_for_http,
)
from cluster.ray_node import parse_size  # noqa: E402
from search.common.errors import CommandError  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STATE_FILE = "state.json"


def build_parser() -> argparse.ArgumentParser:
    """The command line: up, status, down."""
    parser = argparse.ArgumentParser(prog="cluster/local.py", description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=ROOT / ".cluster", help="token, PIDs, logs, MLflow data")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the MLflow server, the Ray head and the workers")
    up.add_argument("--workers", type=int, default=2, help="Ray worker nodes (default 2)")
    up.add_argument("--cpus-per-worker", type=int, default=1, help="CPUs each worker offers to trials (default 1)")
    up.add_argument("--head-cpus", type=int, default=0, help="CPUs of the head (default 0: trials run on workers)")
    up.add_argument("--memory-per-worker", type=parse_size, default="2g", help="memory for trials, e.g. 2g")
    up.add_argument("--object-store-memory", type=parse_size, default="256m", help="of each node, e.g. 256m")
    up.add_argument("--mlflow-port", type=int, default=5000)
    up.add_argument("--ray-port", type=int, default=6379, help="the head's GCS port (RAY_ADDRESS)")
    up.add_argument("--dashboard-port", type=int, default=8265)
    up.add_argument("--ray-client-port", type=int, default=10001, help="Ray Client server port (ray://)")
    up.add_argument("--backend-store-uri", help="MLflow's backend store (default: SQLite in the state dir)")
    up.add_argument("--timeout", type=float, default=180, help="seconds to wait for everything to be up")
    status = commands.add_parser("status", help="say what is up")
    down = commands.add_parser("down", help="stop everything `up` started")
    for sub in (up, status, down):  # --state-dir before or after the command
        sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help="(default .cluster)")
    return parser


# ---------------------------------------------------------------- state


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


# ---------------------------------------------------------------- up


def _start(
    state: dict, state_dir: Path, name: str, command: list[str], env: dict[str, str], **ports: int
) -> subprocess.Popen:
    """Start `command` in its own session (its PID is its process group), logging to logs/<name>.log; `ports`
    (e.g. the node's dashboard agent port) are recorded with it."""
    log_path = state_dir / "logs" / f"{name}.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    entry = {"name": name, "pid": process.pid, "log": str(log_path), "command": command}
    state["processes"].append({**entry, "ports": ports} if ports else entry)
    write_state(state_dir, state)
    return process


def _alive_or_fail(processes: dict[str, subprocess.Popen], state: dict) -> None:
    for name, process in processes.items():
        if process.poll() is not None:
            log = next(p["log"] for p in state["processes"] if p["name"] == name)
            raise CommandError(f"{name} exited with code {process.returncode} while starting; see {log}")


def _wait(what: str, ready, processes: dict[str, subprocess.Popen], state: dict, deadline: float) -> None:
    while not ready():
        _alive_or_fail(processes, state)
        if time.monotonic() > deadline:
            raise CommandError(f"{what} was not up in time; see the logs in {Path(state['token_path']).parent}/logs")
        time.sleep(0.5)


def alive_nodes(dashboard: str, token: str) -> list[dict]:
    """The ALIVE nodes the dashboard's state API lists (empty when it does not answer)."""
    request = urllib.request.Request(
        f"{dashboard}/api/v0/nodes?limit=1000", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            nodes = json.load(response)["data"]["result"]["result"]
    except (OSError, ValueError, KeyError):
        return []
    return [n for n in nodes if n.get("state") == "ALIVE"]


def up(args: argparse.Namespace) -> None:
    """Start the cluster; on any failure stop what was started and raise CommandError."""
    state_dir: Path = args.state_dir.resolve()
    previous = read_state(state_dir)
    if previous and live_pids(previous):
        raise CommandError(f"a cluster from {state_dir} is already up: `python cluster/local.py down` first")
    if previous:  # a cluster that died without `down`: forget it
        shutil.rmtree(previous.get("ray_temp_root") or "/nonexistent", ignore_errors=True)
        (state_dir / STATE_FILE).unlink()
    if args.workers < 1 or args.cpus_per_worker < 1 or args.head_cpus < 0:
        raise CommandError("--workers and --cpus-per-worker must be 1 or more, --head-cpus 0 or more")
    ports = {
        "mlflow": args.mlflow_port,
        "ray": args.ray_port,
        "dashboard": args.dashboard_port,
        "ray_client": args.ray_client_port,
    }
    if len(set(ports.values())) != len(ports):
        raise CommandError(f"the ports must differ: {ports}")
    for name, port in ports.items():
        if not port_is_free(port):
            flag = "--" + name.replace("_", "-") + "-port"
            raise CommandError(f"port {port} ({flag}) is taken on 127.0.0.1: free it or choose another {flag}")

    # Ray's Prometheus endpoints of the dashboard and the autoscaler have fixed ports (44227, 44217) unless these
    # variables say otherwise: free ones, so that two clusters on one machine do not fight over them.
    ports["dashboard_metrics"], ports["autoscaler_metrics"] = free_port(), free_port()
    for sub in ("logs", "mlflow"):
        (state_dir / sub).mkdir(parents=True, exist_ok=True)
    token_path = state_dir / "token"
    token_path.unlink(missing_ok=True)
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32))
    token = token_path.read_text()
    # Ray's unix sockets live under its temp dir and must stay short: a private dir under /tmp, not the state dir.
    temp_root = tempfile.mkdtemp(prefix="ray-local-", dir="/tmp")
    state = {
        "state_dir": str(state_dir),
        "token_path": str(token_path),
        "ray_temp_root": temp_root,
        "ports": ports,
        "workers": args.workers,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "processes": [],
    }
    write_state(state_dir, state)
    # No drain on SIGTERM: `down` would otherwise wait Ray's 30 s drain for Serve proxies this cluster never runs.
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_path)}
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "0"
    env["DASHBOARD_METRIC_PORT"] = str(ports["dashboard_metrics"])
    env["AUTOSCALER_METRIC_PORT"] = str(ports["autoscaler_metrics"])
    env.pop("RAY_AUTH_TOKEN", None)
    env.pop("RAY_ADDRESS", None)
    python = sys.executable
    dashboard = f"http://127.0.0.1:{ports['dashboard']}"
    processes: dict[str, subprocess.Popen] = {}
    deadline = time.monotonic() + args.timeout
    try:
        processes["mlflow"] = _start(
            state,
            state_dir,
            "mlflow",
            [python, str(ROOT / "cluster" / "mlflow_server.py"), "--host", "127.0.0.1"]
            + ["--port", str(ports["mlflow"]), "--data-dir", str(state_dir / "mlflow")]
            + (["--backend-store-uri", args.backend_store_uri] if args.backend_store_uri else []),
            env,
        )
        # No --node-ip-address: `ray start` turns 127.0.0.1 into the machine's address whatever it is given, so
        # Ray's own servers listen beyond loopback (docs/cluster.md, "What listens where"); the token guards them.
        node_flags = ["--object-store-memory", str(args.object_store_memory), "--min-worker-port", "0"]
        node_flags += ["--max-worker-port", "0"]
        processes["ray-head"] = _start(
            state,
            state_dir,
            "ray-head",
            [python, str(ROOT / "cluster" / "ray_node.py"), "head", "--port", str(ports["ray"])]
            + ["--dashboard-host", "127.0.0.1", "--dashboard-port", str(ports["dashboard"])]
            + ["--ray-client-server-port", str(ports["ray_client"]), "--num-cpus", str(args.head_cpus)]
            + ["--memory", "1g", "--dashboard-agent-listen-port", str(agent_port := free_port())]
            + ["--temp-dir", os.path.join(temp_root, "head"), *node_flags],
            env,
            dashboard_agent=agent_port,
        )
        _wait("the Ray head", lambda: alive_nodes(dashboard, token), processes, state, deadline)
        for i in range(1, args.workers + 1):
            processes[f"ray-worker-{i}"] = _start(
                state,
                state_dir,
                f"ray-worker-{i}",
                [python, str(ROOT / "cluster" / "ray_node.py"), "worker", "--address", f"127.0.0.1:{ports['ray']}"]
                + ["--num-cpus", str(args.cpus_per_worker), "--memory", str(args.memory_per_worker)]
                + ["--dashboard-agent-listen-port", str(agent_port := free_port())]
                + ["--labels", f"role=worker,worker={i}"]
                + ["--temp-dir", os.path.join(temp_root, f"worker-{i}"), *node_flags],
                env,
                dashboard_agent=agent_port,
            )
        expected = args.workers + 1
        all_joined = lambda: len(alive_nodes(dashboard, token)) >= expected  # noqa: E731
        _wait(f"{expected} Ray nodes", all_joined, processes, state, deadline)
        mlflow_up = lambda: wait_for_http(f"{exports(state)['MLFLOW_TRACKING_URI']}/health", timeout=1)  # noqa: E731
        _wait("the MLflow server", mlflow_up, processes, state, deadline)
    except BaseException:
        stop_processes([p["pid"] for p in state["processes"]], processes_mentioning(temp_root))
        shutil.rmtree(temp_root, ignore_errors=True)
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        token_path.unlink(missing_ok=True)
        raise
    _write_env_file(state)
    print_summary(state)


def _write_env_file(state: dict) -> None:
    lines = [f"export {k}={v}" for k, v in exports(state).items()]
    (Path(state["state_dir"]) / "env.sh").write_text("\n".join(lines) + "\n")


def print_summary(state: dict) -> None:
    """Where everything is, and the variables to export."""
    ports, state_dir = state["ports"], state["state_dir"]
    print(f"cluster up: MLflow, a Ray head and {state['workers']} worker node(s)  (state: {state_dir})")
    print(f"  Ray dashboard  http://127.0.0.1:{ports['dashboard']}  (token: {state['token_path']})")
    print(f"  MLflow UI      http://127.0.0.1:{ports['mlflow']}")
    print(f"  logs           {state_dir}/logs  (Ray's own logs: {state['ray_temp_root']}/*/session_latest/logs)")
    print("export these (or `source " + f"{state_dir}/env.sh`):")
    for key, value in exports(state).items():
        print(f"export {key}={value}")


# ---------------------------------------------------------------- status, down


def status(args: argparse.Namespace) -> int:
    """Print what is up; 0 when the whole cluster is up, 1 otherwise."""
    state = read_state(args.state_dir.resolve())
    if state is None:
        print(f"no cluster recorded in {args.state_dir}")
        return 1
    ports = state["ports"]
    all_up = True
    for proc in state["processes"]:
        alive = process_alive(proc["pid"])
        all_up &= alive
        print(f"  {proc['name']:<14} pid {proc['pid']:<8} {'running' if alive else 'STOPPED'}   log {proc['log']}")
    token_path = Path(state["token_path"])
    token = token_path.read_text() if token_path.is_file() else ""
    nodes = alive_nodes(f"http://127.0.0.1:{ports['dashboard']}", token)
    mlflow_ok = wait_for_http(f"http://127.0.0.1:{ports['mlflow']}/health", timeout=2)
    print(f"  Ray nodes alive: {len(nodes)} of {state['workers'] + 1};  MLflow: {'healthy' if mlflow_ok else 'DOWN'}")
    all_up &= mlflow_ok and len(nodes) >= state["workers"] + 1
    if all_up:
        print_summary(state)
    return 0 if all_up else 1


def down(args: argparse.Namespace) -> None:
    """Stop every process group `up` recorded (workers, head, MLflow) and what still runs in its Ray temp dir."""
    state_dir = args.state_dir.resolve()
    state = read_state(state_dir)
    if state is None:
        print(f"no cluster recorded in {state_dir}: nothing to stop")
        return
    pgids = [p["pid"] for p in reversed(state["processes"])]
    temp_root = state.get("ray_temp_root") or ""
    left = stop_processes(pgids, processes_mentioning(temp_root) if temp_root else [])
    if temp_root:  # anything its nodes started that escaped their trees meanwhile
        left += stop_processes([], processes_mentioning(temp_root), timeout=5)
    if left:
        raise CommandError(f"processes {left} did not stop; state kept in {state_dir}")
    if temp_root:
        shutil.rmtree(temp_root, ignore_errors=True)
    for name in (STATE_FILE, "token", "env.sh"):
        (state_dir / name).unlink(missing_ok=True)
    print(f"cluster down: stopped {len(pgids)} process group(s); logs and MLflow data kept in {state_dir}")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            up(args)
        elif args.command == "status":
            return status(args)
        else:
            down(args)
    except CommandError as exc:
        print(f"local: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("local: interrupted; what had started was stopped", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
