"""Start one Ray node, head or worker, as `ray start ... --block` so that this process stays the node.

    python cluster/ray_node.py head --num-cpus 0 --memory 2g --dashboard-host 0.0.0.0
    python cluster/ray_node.py worker --address ray-head:6379 --num-cpus 1 --memory 2g

The node requires a token (RAY_AUTH_TOKEN or RAY_AUTH_TOKEN_PATH). With MLFLOW_TRACKING_PASSWORD_FILE the MLflow
login goes to ~/.mlflow/credentials, where every MLflow client of the container finds it.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `cluster` and `search` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster.credentials import write_private  # noqa: E402
from search.common.errors import CommandError  # noqa: E402
from search.common.probes import tcp_connect  # noqa: E402

UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
QUIET_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def parse_size(text: str) -> int:
    """Bytes from `2g`, `512m`, `300000000` (binary units)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kmg]?)i?b?", text.strip().lower())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: give bytes or a number with k, m or g (e.g. 2g)")
    return int(float(match[1]) * UNITS[match[2]])


def node_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The node's environment: token authentication on, usage stats and telemetry off; CommandError without a token."""
    env = dict(os.environ if base is None else base)
    env["RAY_AUTH_MODE"] = "token"
    token_path = env.get("RAY_AUTH_TOKEN_PATH")
    if not env.get("RAY_AUTH_TOKEN"):
        if not token_path:
            raise CommandError("no Ray token: set RAY_AUTH_TOKEN, or RAY_AUTH_TOKEN_PATH to a file holding it")
        path = Path(token_path)
        if not path.is_file() or not path.read_text().strip():
            raise CommandError(f"RAY_AUTH_TOKEN_PATH={token_path} is not a file holding a token")
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    return env


def install_mlflow_credentials(env: dict[str, str], home: Path | None = None) -> Path | None:
    """Write MLflow's credentials file from MLFLOW_TRACKING_PASSWORD_FILE (and MLFLOW_TRACKING_USERNAME); its path."""
    source = env.get("MLFLOW_TRACKING_PASSWORD_FILE")
    if not source:
        return None
    try:
        password = Path(source).read_text().strip()
    except OSError as exc:
        raise CommandError(f"MLFLOW_TRACKING_PASSWORD_FILE={source}: {exc.strerror or exc}") from None
    target = (home or Path.home()) / ".mlflow" / "credentials"
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    username = env.get("MLFLOW_TRACKING_USERNAME", "admin")
    write_private(target, f"[mlflow]\nmlflow_tracking_username = {username}\nmlflow_tracking_password = {password}\n")
    return target


def node_command(args: argparse.Namespace) -> list[str]:
    """The `ray start ... --block` command line for the node `args` describe."""
    ray_bin = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    command = [ray_bin, "start", "--block", "--disable-usage-stats"]
    if args.role == "head":
        command += ["--head", "--port", str(args.port), "--include-dashboard", "true"]
        command += ["--dashboard-host", args.dashboard_host, "--dashboard-port", str(args.dashboard_port)]
        if args.ray_client_server_port is not None:
            command += ["--ray-client-server-port", str(args.ray_client_server_port)]
    else:
        command += ["--address", args.address]
    options = {
        "--num-cpus": args.num_cpus,
        "--memory": args.memory,
        "--object-store-memory": args.object_store_memory,
        "--node-ip-address": args.node_ip_address,
        "--dashboard-agent-listen-port": args.dashboard_agent_listen_port,
        "--temp-dir": args.temp_dir and str(Path(args.temp_dir).resolve()),
        "--min-worker-port": args.min_worker_port,
        "--max-worker-port": args.max_worker_port,
    }
    for flag, value in options.items():
        if value is not None:
            command += [flag, str(value)]
    if args.labels:
        command += ["--labels", args.labels]
    return command


def wait_for_tcp(address: str, timeout: float) -> bool:
    """True once `host:port` accepts a connection, False after `timeout` seconds."""
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout
    while True:
        try:
            tcp_connect(host, int(port))
            return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(1)


JOINED = "Ray runtime started"  # what `ray start` prints once the node is part of the cluster


def join_failure(output: str, address: str) -> str:
    """One line saying why `ray start` could not join the head at `address`, from what it printed."""
    if "InvalidAuthToken" in output or "AuthenticationError" in output:
        return f"the head at {address} refused this node's token: give it the cluster's token (RAY_AUTH_TOKEN)"
    if "Failed to connect to GCS" in output:
        return f"could not reach the Ray head's GCS at {address}: check RAY_HEAD_ADDRESS and the firewall"
    last = [line for line in output.splitlines() if line.strip()][-1:] or ["no output"]
    return f"ray start could not join {address}: {last[0].strip()[:300]}"


def supervise_worker(command: list[str], env: dict[str, str], address: str) -> int:
    """Run a worker's `ray start --block`, its output held back until the node joins: one line instead of a
    traceback when it cannot join; returns its exit code."""
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda sig, _frame: child.send_signal(sig))
    held, joined = [], False
    assert child.stdout is not None
    for line in child.stdout:
        if joined:
            sys.stdout.write(line)
            sys.stdout.flush()
            continue
        held.append(line)
        if JOINED in line:
            joined = True
            sys.stdout.write("".join(held))
            sys.stdout.flush()
    code = child.wait()
    if not joined and code != 0:
        print(f"ray_node: {join_failure(''.join(held), address)}", file=sys.stderr, flush=True)
        return 1
    return code


def build_parser() -> argparse.ArgumentParser:
    """The command line: `head` or `worker`, then the node's resources and ports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    roles = parser.add_subparsers(dest="role", required=True)
    head = roles.add_parser("head", help="the head: GCS, dashboard (with --num-cpus 0 it runs no trials)")
    head.add_argument("--port", type=int, default=6379, help="GCS port workers and drivers join (default 6379)")
    head.add_argument("--dashboard-host", default="127.0.0.1", help="0.0.0.0 inside a container, else loopback")
    head.add_argument("--dashboard-port", type=int, default=8265)
    head.add_argument("--ray-client-server-port", type=int, help="Ray Client port (ray://; Ray's default 10001)")
    worker = roles.add_parser("worker", help="a worker node that joins a head")
    worker.add_argument("--address", required=True, help="the head's GCS, host:port (e.g. ray-head:6379)")
    worker.add_argument("--wait-for-head", type=float, default=45, help="seconds to wait for the head's GCS")
    for sub in (head, worker):
        sub.add_argument("--num-cpus", type=int, help="CPUs this node offers to trials (default: all the machine's)")
        sub.add_argument("--memory", type=parse_size, help="memory for tasks and actors, e.g. 2g")
        sub.add_argument("--object-store-memory", type=parse_size, help="object store size, e.g. 256m")
        sub.add_argument("--node-ip-address", help="address other nodes reach this one at")
        sub.add_argument("--dashboard-agent-listen-port", type=int, help="distinct per node on one host")
        sub.add_argument("--temp-dir", help="this node's own temp dir (sessions, sockets, logs); keep it short")
        sub.add_argument("--min-worker-port", type=int, help="with --max-worker-port; 0 and 0: random ports")
        sub.add_argument("--max-worker-port", type=int)
        sub.add_argument("--labels", help="node labels, e.g. role=worker")
        sub.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and replace this process with `ray start --block`."""
    args = build_parser().parse_args(argv)
    try:
        env = node_env()
        command = node_command(args)
        if args.dry_run:
            print(" ".join(command))
            return
        install_mlflow_credentials(env)
        if args.role == "worker" and not wait_for_tcp(args.address, args.wait_for_head):
            raise CommandError(
                f"could not reach the Ray head at {args.address} within {args.wait_for_head:.0f} s: "
                "check the address (RAY_HEAD_ADDRESS) and that its port is open"
            )
    except CommandError as exc:
        sys.exit(f"ray_node: {exc}")
    sys.stdout.flush()
    if args.role == "worker":
        sys.exit(supervise_worker(command, env, args.address))
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
