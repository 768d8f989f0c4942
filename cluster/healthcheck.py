"""Container healthcheck: exit 0 when a URL answers HTTP 200, else 1 (stdlib only, one argument without spaces).

python cluster/healthcheck.py http://127.0.0.1:8265/api/gcs_healthz

Also the project's one HTTP probe and one TCP probe (the commands, cluster/ and the tests use these).
"""

from __future__ import annotations

import socket
import sys
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


def main(argv: list[str] | None = None) -> int:
    """Check the URL given as the only argument."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python cluster/healthcheck.py URL", file=sys.stderr)
        return 2
    return 0 if healthy(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
