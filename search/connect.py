"""Reaching the MLflow tracking server and the Ray cluster, with a clear refusal when either does not answer."""

from __future__ import annotations

import os
import socket
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

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


def check_tracking_uri(uri: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError with a clear message when an HTTP tracking server does not answer its health check."""
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status == 200:
                return
            problem = f"answered HTTP {response.status}"
    except urllib.error.HTTPError as exc:
        problem = f"answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        problem = f"does not answer ({getattr(exc, 'reason', exc)})"
    raise ConnectionError(
        f"MLflow tracking server {uri} {problem}: start it (python cluster/mlflow_server.py) or fix --tracking-uri"
    )


def _host_port(address: str) -> tuple[str, int] | None:
    parsed = urlparse(address if "://" in address else f"ray://{address}")
    if parsed.hostname is None:
        return None
    default = 8265 if parsed.scheme in ("http", "https") else 6379
    return parsed.hostname, parsed.port or default


def check_ray_address(address: str, timeout: float = 5.0) -> None:
    """Raise ConnectionError when nothing listens at a Ray address (`host:port`, `ray://host:port`)."""
    target = _host_port(address)
    if target is None:
        return
    try:
        with socket.create_connection(target, timeout=timeout):
            return
    except OSError as exc:
        raise ConnectionError(
            f"Ray cluster at {address} does not answer ({exc.strerror or exc}): start it "
            "(python cluster/local.py up, or docker compose up) or fix --address / RAY_ADDRESS"
        ) from None


def connect_ray(address: str | None, project_root: Path) -> bool:
    """Connect to the cluster at `address`, or start a private local Ray; True when this call started Ray.

    On a cluster the project's code travels with the job (runtime_env working_dir), so workers need no rebuild.
    """
    import ray

    if ray.is_initialized():
        return False
    if address in (None, "", "local"):
        ray.init(address="local", include_dashboard=True, dashboard_host="127.0.0.1", log_to_driver=False)
        return True
    if address != "auto":
        check_ray_address(address)
    runtime_env = None
    if not os.environ.get("RAY_JOB_ID"):  # inside `ray job submit` the code is already there
        runtime_env = {"working_dir": str(project_root), "excludes": CODE_EXCLUDES}
    ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
    return True
