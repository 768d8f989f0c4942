"""Container healthcheck: exit 0 when a URL answers HTTP 200, else 1 (stdlib only, one argument without spaces).

A script importing nothing of the project: the MLflow image (Dockerfile.mlflow) holds only the server's files.
"""

from __future__ import annotations

import sys
import urllib.request


def healthy(url: str, timeout: float = 4.0) -> bool:
    """True when `url` answers 200 within `timeout` seconds (an error status, no answer or a bad URL: False)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status == 200
    except (OSError, ValueError):  # HTTPError is an OSError
        return False


def main(argv: list[str] | None = None) -> int:
    """Check the URL given as the only argument."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python cluster/healthcheck.py URL", file=sys.stderr)
        return 2
    return 0 if healthy(argv[0]) else 1


if __name__ == "__main__":
    sys.exit(main())
