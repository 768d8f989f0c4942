"""Reaching the MLflow tracking server and the Ray cluster, with a clear refusal when either does not answer."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import urllib.error
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse, urlsplit, urlunsplit

from search.common.errors import Unreachable
from search.common.probes import status_of, tcp_connect

# What Ray's runtime_env working_dir leaves out when it ships the project's code to a cluster.
CODE_EXCLUDES = [
    ".git",
    ".venv",
    "mlflow.db",
    "mlruns",
    "mlartifacts",
    "ray_results",
    "reports",
    "releases",
    ".cluster",
]


def served(uri: str) -> bool:
    """Whether a tracking URI names an MLflow server (http or https), rather than a local store."""
    return uri.startswith(("http://", "https://"))


def public_uri(uri: str) -> str:
    """The URI without any user:password part, fit to print."""
    parts = urlsplit(uri)
    if not (parts.username or parts.password):
        return uri
    return urlunsplit(parts._replace(netloc=(parts.hostname or "") + (f":{parts.port}" if parts.port else "")))


# MLflow's own default store, in the working folder: what every command uses without MLFLOW_TRACKING_URI.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
# How a user on the host gets the compose cluster's login (printed where a command must run on the host).
LOGIN_ON_HOST = 'eval "$(docker compose exec -T ray-head python cluster/credentials.py show)"'
RETRY_S = 30.0  # how long a first probe waits out a transient failure (a server or a name still coming up)
TRANSIENT_HTTP = (502, 503, 504)


def transient(exc: BaseException, host: str | None) -> bool:
    """True for a failure a starting server or network explains: a name that does not resolve *yet*, a timeout, a
    connection refused or reset by another host (on loopback, a refusal means nothing listens)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, Unreachable):  # it answered that it cannot serve yet (HTTP 502, 503, 504)
        return True
    if isinstance(reason, socket.gaierror):
        return reason.errno == socket.EAI_AGAIN
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return True
    if isinstance(reason, (ConnectionRefusedError, ConnectionResetError)):
        return host not in (None, "localhost", "::1") and not host.startswith("127.")
    return False


def _with_retries(probe, host: str | None, retry_s: float):
    """Run `probe()` until it returns, retrying transient failures (1 s apart) for `retry_s` seconds."""
    deadline = time.monotonic() + retry_s
    while True:
        try:
            return probe()
        except (urllib.error.URLError, OSError) as exc:
            if not transient(exc, host) or time.monotonic() > deadline:
                raise
        time.sleep(1.0)


def check_tracking_uri(uri: str, timeout: float = 5.0, must_exist: bool = False, retry_s: float = RETRY_S) -> None:
    """Raise Unreachable, with what to do, when an HTTP tracking server does not answer its health check
    (MLflow itself would retry for minutes) or, with `must_exist`, when a SQLite database is missing (MLflow
    would quietly create an empty one). A transient failure is retried for `retry_s` seconds first."""
    if uri.startswith("sqlite:///"):
        path = Path(uri.removeprefix("sqlite:///"))
        if must_exist and str(path) != ":memory:" and not path.is_file():
            raise Unreachable(f"no MLflow database at {path.resolve()}: run a search first or fix --tracking-uri")
        return
    if not served(uri):
        return

    def probe() -> int:
        status = status_of(uri.rstrip("/") + "/health", timeout)
        if status in TRANSIENT_HTTP:
            raise Unreachable(f"answered HTTP {status}")
        return status

    try:
        status = _with_retries(probe, urlsplit(uri).hostname, retry_s)
        if status == 200 or status in (401, 403):  # it answered; credentials are the client's business
            return
        problem = f"answered HTTP {status}"
    except (urllib.error.URLError, OSError) as exc:
        problem = f"does not answer ({getattr(exc, 'reason', exc)})"
    raise Unreachable(
        f"MLflow tracking server {public_uri(uri)} {problem}: start it (python cluster/mlflow_server.py) "
        "or fix --tracking-uri"
    )


def _host_port(address: str) -> tuple[str, int] | None:
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if parsed.hostname is None:
        return None
    default = 8265 if parsed.scheme in ("http", "https") else 6379
    return parsed.hostname, parsed.port or default


def check_ray_address(address: str, timeout: float = 5.0, retry_s: float = RETRY_S) -> None:
    """Raise Unreachable when nothing listens at a Ray address (`host:port`, `ray://host:port`); a transient
    failure is retried for `retry_s` seconds first."""
    target = _host_port(address)
    if target is None:
        return
    try:
        _with_retries(lambda: tcp_connect(*target, timeout=timeout), target[0], retry_s)
    except OSError as exc:
        raise Unreachable(
            f"Ray cluster at {address} does not answer ({exc.strerror or exc}): start it "
            "(python cluster/local.py up, or docker compose up) or fix --address / RAY_ADDRESS"
        ) from None


@contextmanager
def held_interrupts(hold: Callable[[], bool] = lambda: True) -> Iterator[list[int]]:
    """Ctrl-C held over a step that must not be cut in the middle: yields the SIGINTs received meanwhile, for the
    caller to act on after it. While `hold()` is false, and at a second Ctrl-C, KeyboardInterrupt is raised at once."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame) -> None:
        if received or not hold():
            raise KeyboardInterrupt
        received.append(signum)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGINT, previous)


def connect_ray(address: str | None, project_root: Path):
    """Connect to the cluster at `address` (the project's code travels with the job), or start a private local Ray;
    Ray's context when this call connected, else None. Ctrl-C is held only once Ray's node runs, while the driver
    connects: a driver cut then crashes at exit (BENCHMARKS.md, "Ctrl-C at a search's start")."""
    import ray

    if ray.is_initialized():
        return None
    if address not in (None, "", "local", "auto"):
        check_ray_address(address)
    from search.common.compat import ray_node_ready

    with held_interrupts(hold=ray_node_ready) as received:
        try:
            context = _init_ray(address, project_root)
        except Exception:
            if not received:
                raise
            # The same Ctrl-C reached Ray's own processes (its dashboard takes SIGINT) and failed the start.
        if received:
            ray.shutdown()
    if received:
        raise KeyboardInterrupt
    return context


def disconnect_ray() -> None:
    """`ray.shutdown()` with Ctrl-C held meanwhile and then let go: stopping is what it asked for."""
    import ray

    with held_interrupts():
        ray.shutdown()


def _init_ray(address: str | None, project_root: Path):
    import ray

    if address in (None, "", "local"):
        # Workers import the project from this clone whether or not it is installed (`pip install -e .`).
        path = os.pathsep.join(p for p in (str(project_root), os.environ.get("PYTHONPATH", "")) if p)
        return ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False,
                        runtime_env={"env_vars": {"PYTHONPATH": path}})  # fmt: skip
    runtime_env = None
    if not (os.environ.get("RAY_JOB_ID") or os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR")):  # not a submitted job
        runtime_env = {"working_dir": str(project_root), "excludes": CODE_EXCLUDES}
    return ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
