"""The project's one HTTP probe and one TCP probe: does something answer at a URL, a host and port.

Bottom layer (stdlib only, no project import). Both sides of the project probe servers: `cluster/` while it starts
and stops them (`cluster.processes`, `cluster.ray_node`), and the search's side before it uses them
(`search.common.connect` refuses a tracking server or a Ray address that does not answer; `search.common.compat`
asks whether a trial's node still takes connections). The bottom layer is the one place both may import: the search
may not import `cluster/`, and `cluster/` imports nothing of the search above the bottom. The containers' own
health check, `cluster/healthcheck.py`, stays a stdlib script of its own: the MLflow image holds only the server's
files (Dockerfile.mlflow).
"""

from __future__ import annotations

import socket
import urllib.error
import urllib.request


def status_of(url: str, timeout: float = 4.0, headers: dict[str, str] | None = None) -> int:
    """The HTTP status `url` answers with, an error status too; OSError when nothing answers."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthy(url: str, timeout: float = 4.0, headers: dict[str, str] | None = None) -> bool:
    """True when `url` answers 200 within `timeout` seconds."""
    try:
        return status_of(url, timeout, headers) == 200
    except (OSError, ValueError):
        return False


def tcp_connect(host: str, port: int, timeout: float = 2.0) -> None:
    """Open and close a TCP connection to `host:port`; OSError when nothing accepts it."""
    socket.create_connection((host, port), timeout=timeout).close()
