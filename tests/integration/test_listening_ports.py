"""What listens where, said truly: docs/cluster.md's "What listens where" table, parsed, and given there only;
the helpers here read a running cluster's sockets against it (test_local_cluster.py, on the module's cluster)."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
from sockets import Listener, listening_sockets

from cluster.local import live_pids
from cluster.processes import process_tree

ROOT = Path(__file__).resolve().parents[2]
BINDS = {"127.0.0.1": "127.0.0.1", "all interfaces": "all interfaces", "the machine's address": "machine"}
STATE_PORTS = {
    "--mlflow-port": "mlflow",
    "--ray-port": "ray",
    "--dashboard-port": "dashboard",
    "--ray-client-port": "ray_client",
    "DASHBOARD_METRIC_PORT": "dashboard_metrics",
    "AUTOSCALER_METRIC_PORT": "autoscaler_metrics",
}
SESSION_PORTS = {  # `ray start` flag -> the file each node's session dir records the port in
    "--dashboard-agent-listen-port": "dashboard_agent_listen_port",
    "--dashboard-agent-grpc-port": "metrics_agent_port",
    "--metrics-export-port": "metrics_export_port",
    "--runtime-env-agent-port": "runtime_env_agent_port",
}
RANDOM_PORTS = {"--node-manager-port", "--object-manager-port", "--min-worker-port", "--max-worker-port", "random"}
# Harmless calls (reads, or empty requests) on each of Ray's gRPC services; without a token each must be refused.
GRPC_PROBES = [
    "/ray.rpc.NodeInfoGcsService/GetAllNodeInfo",
    "/ray.rpc.NodeManagerService/GetNodeStats",
    "/ray.rpc.ObjectManagerService/Pull",
    "/ray.rpc.ReporterService/HealthCheck",
    "/ray.rpc.CoreWorkerService/GetCoreWorkerStats",
    "/ray.rpc.RayletDriver/ClusterInfo",
]
DRIVER = """
import sys, ray
ray.init(log_to_driver=False)
@ray.remote(num_cpus=1)
class Trial:
    def ping(self):
        return "pong"
trial = Trial.remote()
print(ray.get(trial.ping.remote()), flush=True)
sys.stdin.readline()
"""


@dataclass(frozen=True)
class Row:
    """One row of the table: which processes and ports it covers, where they bind, what guards them."""

    listener: str
    processes: tuple[str, ...]
    ports: tuple[str, ...]
    protocol: str
    binds: frozenset[str]
    guard: str


def listening_table(path: Path) -> list[Row]:
    """The table under the heading `What listens where` in `path`."""
    lines = path.read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"#+ What listens where", line))
    end = next((i for i, line in enumerate(lines[start:]) if line.startswith("|")), 0)
    table = []
    for line in lines[start + end :]:
        if not line.startswith("|"):
            break
        table.append([cell.strip() for cell in line.strip("|").split("|")])
    header, rows = table[0], table[2:]
    assert header == ["listener", "process", "port", "protocol", "binds to", "guarded by"], header
    parsed = []
    for listener, process, port, protocol, binds, guard in rows:
        named = port.split(" (")[0]  # what follows in brackets is the default, for readers
        ports = tuple(re.findall(r"`([^`]+)`", named)) or (named,)
        for key in ports:
            assert key in STATE_PORTS or key in SESSION_PORTS or key in RANDOM_PORTS, f"{path}: unknown port {key}"
        assert all(b.strip() in BINDS for b in binds.split(",")), f"{path}: unknown bind address in {binds!r}"
        assert protocol in ("HTTP", "gRPC") and guard.split(":")[0] in ("token", "none"), (protocol, guard)
        bind_set = frozenset(BINDS[b.strip()] for b in binds.split(","))
        processes = tuple(re.findall(r"`([^`]+)`", process))
        parsed.append(Row(listener, processes, ports, protocol, bind_set, guard.split(":")[0]))
    return parsed


def test_docs_give_the_table_once():
    assert len(listening_table(ROOT / "docs" / "cluster.md")) >= 10
    assert not re.search(r"^#+ What listens where", (ROOT / "README.md").read_text(), re.M), "README copies the table"


def session_ports(temp_root: str) -> dict[str, set[int]]:
    """Ports each node's session dir records, by `ray start` flag."""
    found: dict[str, set[int]] = defaultdict(set)
    for flag, name in SESSION_PORTS.items():
        for path in Path(temp_root).glob(f"*/session_latest/{name}_*"):
            found[flag].add(int(path.read_text().strip()))
    return found


def lineage(pid: int) -> list[str]:
    """The process `pid` and its ancestors, each as its name and the start of its command line."""
    process = psutil.Process(pid)
    return [f"{p.name()} {' '.join(p.cmdline()[:3])}" for p in (process, *process.parents())]


def resolve(rows: list[Row], texts: list[str], port: int, known: dict[str, set[int]]) -> Row:
    """The one row covering a socket on `port` held by the process `texts` describe (itself first, then the
    nearest ancestor a row names: a server's worker processes belong to the server)."""
    for text in texts:
        if candidates := [r for r in rows if any(p in text for p in r.processes)]:
            break
    assert candidates, f"no row of docs/cluster.md's table names the process of port {port}: {texts}"
    best = max(max(len(p) for p in r.processes if p in text) for r in candidates)
    candidates = [r for r in candidates if any(len(p) == best and p in text for p in r.processes)]
    exact = [r for r in candidates if any(port in known.get(k, ()) for k in r.ports)]
    chosen = exact or [r for r in candidates if all(k in RANDOM_PORTS for k in r.ports)]
    assert len(chosen) == 1, f"port {port} of {text[:120]!r}: rows {[r.listener for r in chosen]}"
    return chosen[0]


def categories(ips: set[str], node_ip: str) -> frozenset[str]:
    """The table's words for the addresses a port is bound to."""
    words = set()
    for ip in ips:
        ip = ip.removeprefix("::ffff:")
        if ip in ("127.0.0.1", "::1"):
            words.add("127.0.0.1")
        elif ip in ("0.0.0.0", "::"):
            words.add("all interfaces")
        elif ip == node_ip:
            words.add("machine")
        else:
            raise AssertionError(f"unexpected bind address {ip}")
    return frozenset(words)


def refused_without_token(protocol: str, host: str, port: int) -> bool:
    """True when the server refuses a request that carries no token; False when it answers it."""
    if protocol == "HTTP":
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/api/v0/nodes", timeout=10):
                return False
        except urllib.error.HTTPError as exc:
            return exc.code == 401
    refused = False
    with grpc.insecure_channel(f"{host}:{port}") as channel:
        for method in GRPC_PROBES:
            try:
                channel.unary_unary(method)(b"", timeout=10)
                return False
            except grpc.RpcError as exc:
                refused |= exc.code() == grpc.StatusCode.UNAUTHENTICATED
    return refused


def answers_without_token(host: str, port: int) -> bool:
    """True when an HTTP server answers `GET /` without credentials."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as response:
            return response.status == 200
    except urllib.error.HTTPError:
        return False


def snapshot(state: dict, driver_pid: int) -> list[Listener]:
    """The listening sockets of the cluster's processes and of the driver (named `(driver)`)."""
    driver = [Listener(x.pid, "(driver)", "", x.ip, x.port) for x in listening_sockets(process_tree(driver_pid))]
    return listening_sockets(live_pids(state)) + driver
