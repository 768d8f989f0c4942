"""Serve optuna-dashboard on 127.0.0.1 for a search's Optuna study journal, while the search runs or after it.

    python cluster/study_dashboard.py [--storage-path DIR] [--search-id ID | JOURNAL] [--port 8080] [--wait]

`--host 0.0.0.0` is for a container whose port is published on the host's loopback (compose's `study-dashboard`).
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import sys
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

if __package__ in (None, ""):  # run as a script: the project's root on the path, as for every entrypoint
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.common.contract import STUDY_JOURNAL as JOURNAL  # noqa: E402 - the file the search writes
from search.common.errors import UsageError  # noqa: E402

HOST = "127.0.0.1"


class ThreadedServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # one line per request would drown the URL
        pass


def find_journal(settings: argparse.Namespace) -> Path:
    """The journal to serve: the one given, the one of `--search-id`, or the latest written under the storage path."""
    if settings.journal is not None:
        if not settings.journal.is_file():
            raise UsageError(f"no journal file at {settings.journal}: give a search's {JOURNAL}")
        return settings.journal
    if settings.search_id is not None:
        path = settings.storage_path / f"search-{settings.search_id}" / JOURNAL
        if not path.is_file():
            raise UsageError(
                f"no journal for search {settings.search_id} under {settings.storage_path}: check the id, or pass "
                "the --storage-path the search ran with"
            )
        return path
    found = sorted(settings.storage_path.glob(f"search-*/{JOURNAL}"), key=lambda p: p.stat().st_mtime)
    if not found:
        raise UsageError(
            f"no search journal under {settings.storage_path}: run a search first, or pass its --storage-path"
        )
    return found[-1]


def wait_for_journal(settings: argparse.Namespace) -> Path:
    """`find_journal`, retried until a search writes its journal (Ctrl-C stops waiting)."""
    said = False
    while True:
        try:
            return find_journal(settings)
        except UsageError as exc:
            if not settings.wait:
                raise
            if not said:
                print(f"waiting: {exc}", flush=True)
                said = True
            time.sleep(2.0)


def open_server(journal: Path, port: int, host: str) -> ThreadedServer:
    """optuna-dashboard over the journal, bound to host:port (not yet serving)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna_dashboard import wsgi

    app = wsgi(JournalStorage(JournalFileBackend(str(journal))))
    try:
        return make_server(host, port, app, server_class=ThreadedServer, handler_class=QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {host} is taken: choose another with --port") from None
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror or exc}): choose another --port") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line, its storage path resolved."""
    parser = argparse.ArgumentParser(description="Live view of a search's Optuna study (optuna-dashboard).")
    parser.add_argument("journal", nargs="?", type=Path, help=f"a search's {JOURNAL} (instead of --search-id)")
    parser.add_argument(
        "--storage-path",
        type=Path,
        default=Path(os.environ.get("TUNE_STORAGE_PATH") or "ray_results"),
        help="the search's --storage-path (default: TUNE_STORAGE_PATH, else ./ray_results)",
    )
    parser.add_argument("--search-id", help="the search to show (default: the latest under --storage-path)")
    parser.add_argument("--port", type=int, default=8080, help="port on 127.0.0.1 (default 8080)")
    parser.add_argument("--host", default=HOST, help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
    parser.add_argument("--wait", action="store_true", help="wait for a first search instead of refusing")
    args = parser.parse_args(argv)
    if args.journal is not None and args.search_id is not None:
        parser.error("give either --search-id or a journal file, not both")
    if not 0 < args.port < 65536:
        parser.error(f"--port {args.port} is not a port number: use 1-65535")
    args.storage_path = args.storage_path.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Find the journal, serve it until interrupted; 2 with one line on a problem the user can fix."""
    settings = parse_args(argv)
    try:
        journal = wait_for_journal(settings)
        server = open_server(journal, settings.port, settings.host)
    except UsageError as exc:
        print(f"study_dashboard: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
    print(f"optuna-dashboard for {journal} at http://{settings.host}:{settings.port}/ (Ctrl-C stops it)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
