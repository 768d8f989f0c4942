"""A whole cluster as local processes: an MLflow server, a Ray head with its dashboard, N Ray worker nodes.

    python cluster/local.py up --workers 2      # prints the variables to export
    python cluster/local.py status | add-worker | remove-worker | down

Every node is its own `ray start` (cluster/ray_node.py); all share one token kept in the state dir (.cluster/).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `cluster` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster import local_steps as steps  # noqa: E402
from cluster import local_workers  # noqa: E402
from cluster.local_steps import ROOT, STATE_FILE, exports, live_pids, read_state  # noqa: E402, F401 (live_pids: tests)
from cluster.processes import process_alive, processes_mentioning, stop_processes, wait_for_http  # noqa: E402
from cluster.ray_node import parse_size  # noqa: E402
from search.common.errors import CommandError  # noqa: E402


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
    add = commands.add_parser("add-worker", help="start one more worker node (the sizes `up` gave the others)")
    add.add_argument("--timeout", type=float, default=120, help="seconds to wait for it to join")
    remove = commands.add_parser("remove-worker", help="drain a worker node through Ray's drain API, then stop it")
    remove.add_argument("--worker", type=int, help="its number (ray-worker-<n>; default: the last one added)")
    remove.add_argument("--grace", type=float, default=30, help="seconds its running trials get to finish")
    for sub in (up, status, down, add, remove):  # --state-dir before or after the command
        sub.add_argument("--state-dir", type=Path, default=argparse.SUPPRESS, help="(default .cluster)")
    return parser


def up(args: argparse.Namespace) -> None:
    """Start the cluster; on any failure stop what was started and raise CommandError."""
    state_dir: Path = args.state_dir.resolve()
    steps.forget_dead_cluster(state_dir)
    ports = steps.check_flags(args)
    state = steps.record_state(state_dir, steps.write_token(state_dir), ports, args.workers)
    sizes = {"cpus": args.cpus_per_worker, "memory": args.memory_per_worker, "object_store": args.object_store_memory}
    state["worker_sizes"], state["last_worker"] = sizes, args.workers  # for add-worker: sizes, the next number
    launch = steps.Launch(state, steps.process_env(state), time.monotonic() + args.timeout)
    try:
        steps.start_mlflow(launch, args.backend_store_uri)
        steps.start_head(launch, args)
        steps.wait_for_nodes(launch, 1)
        for number in range(1, args.workers + 1):
            steps.start_worker(launch, number, sizes)
        steps.wait_for_nodes(launch, args.workers + 1)
        steps.wait_for_mlflow(launch)
    except BaseException:
        steps.roll_back(state)
        raise
    steps.write_env_file(state)
    print_summary(state)


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
    nodes = steps.alive_nodes(f"http://127.0.0.1:{ports['dashboard']}", token)
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
    commands = {"up": up, "status": status, "down": down}
    commands |= {"add-worker": local_workers.add_worker, "remove-worker": local_workers.remove_worker}
    try:
        return commands[args.command](args) or 0
    except CommandError as exc:
        print(f"local: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("local: interrupted; what had started was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
