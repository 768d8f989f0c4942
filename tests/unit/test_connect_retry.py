"""The first probes wait out a transient failure (bounded) and refuse a wrong address at once."""

from __future__ import annotations

import socket
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cluster.processes import free_port
from search.common import connect
from search.common.errors import Unreachable


@pytest.mark.parametrize(
    "exc, host, expected",
    [
        (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "mlflow", True),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "mlflw", False),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), "mlflow", True),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), "127.0.0.1", False),
        (ConnectionRefusedError(111, "refused"), "localhost", False),
        (urllib.error.URLError(TimeoutError("timed out")), "10.0.0.9", True),
        (Unreachable("answered HTTP 503"), "mlflow", True),
        (PermissionError(13, "denied"), "mlflow", False),
    ],
)
def test_what_counts_as_transient(exc, host, expected):
    assert connect.transient(exc, host) is expected


def serve(statuses: list[int]) -> tuple[ThreadingHTTPServer, list[int]]:
    """A server on loopback answering /health with `statuses` in turn (then the last one)."""
    seen: list[int] = []

    class Health(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            code = statuses[min(len(seen), len(statuses) - 1)]
            seen.append(code)
            self.send_response(code)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, seen


def test_a_503_is_waited_out_then_the_server_is_accepted():
    server, seen = serve([503, 503, 200])
    try:
        connect.check_tracking_uri(f"http://127.0.0.1:{server.server_port}", retry_s=10)
    finally:
        server.shutdown()
    assert seen == [503, 503, 200]


def test_a_503_that_lasts_is_refused_after_the_bound_in_one_line():
    server, seen = serve([503])
    started = time.monotonic()
    try:
        with pytest.raises(ConnectionError) as refused:
            connect.check_tracking_uri(f"http://127.0.0.1:{server.server_port}", retry_s=1.5)
    finally:
        server.shutdown()
    assert 1.5 <= time.monotonic() - started < 6 and len(seen) >= 2
    assert "answered HTTP 503" in str(refused.value) and "\n" not in str(refused.value)


def test_nothing_listening_on_loopback_and_a_404_are_refused_at_once():
    started = time.monotonic()
    with pytest.raises(ConnectionError, match="does not answer"):
        connect.check_tracking_uri(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError, match="Ray cluster at"):
        connect.check_ray_address(f"127.0.0.1:{free_port()}")
    server, _ = serve([404])
    try:
        with pytest.raises(ConnectionError, match="answered HTTP 404"):
            connect.check_tracking_uri(f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert time.monotonic() - started < 5, "a final answer must not wait out the retry bound"
