"""Start the MLflow tracking server: a backend store (SQLite by default), artifacts stored and proxied by the server.

    python cluster/mlflow_server.py --host 127.0.0.1 --port 5000 --data-dir ./mlflow-server
    MLFLOW_AUTH_ADMIN_PASSWORD=... python cluster/mlflow_server.py --basic-auth     # logins required
    python cluster/mlflow_server.py --backend-store-uri postgresql://mlflow@db:5432/mlflow --workers 2

A PostgreSQL password comes from libpq's PGPASSWORD or PGPASSFILE, never from the command line. With
`--basic-auth` the admin is MLFLOW_TRACKING_USERNAME (default `admin`); each secret may come from a `<NAME>_FILE`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import sqlite3
import sys
from pathlib import Path

QUIET_ENV = {
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",  # no job runner: fewer processes (BENCHMARKS.md, "Measured once")
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}


# The basic-auth app derives a key slowly on every request (BENCHMARKS.md, "What a login costs"): a verified login
# is cached this long, so a changed password is refused at most this late. MLFLOW_AUTH_CACHE_TTL_S=0: no cache.
AUTH_CACHE_TTL_S = 60
FILE_SECRETS = ("MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY")


def server_command(args: argparse.Namespace) -> list[str]:
    """The `mlflow server` command line of the flags: the backend store (default SQLite in the data dir), artifacts
    in the data dir, served by `--workers` server processes."""
    data_dir = args.data_dir.resolve()
    mlflow_bin = shutil.which("mlflow", path=str(Path(sys.executable).parent)) or "mlflow"
    hosts = args.allowed_hosts or f"localhost:{args.port},127.0.0.1:{args.port},localhost,127.0.0.1"
    command = [mlflow_bin, "server", "--host", args.host, "--port", str(args.port), "--workers", str(args.workers)]
    command += ["--backend-store-uri", args.backend_store_uri or f"sqlite:///{data_dir / 'mlflow.db'}"]
    command += ["--artifacts-destination", str(data_dir / "artifacts"), "--serve-artifacts"]
    return command + ["--allowed-hosts", hosts]


def basic_auth(data_dir: Path, env: dict[str, str], auth_database: str | None = None) -> dict[str, str]:
    """Write the basic-auth app's config under `data_dir` (its users in `auth_database`, default SQLite there);
    returns the variables the server then needs. A verified login is cached for AUTH_CACHE_TTL_S seconds."""
    password = env.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if not password:
        raise SystemExit("mlflow_server: --basic-auth needs MLFLOW_AUTH_ADMIN_PASSWORD (the admin's password)")
    config = Path(data_dir).resolve() / "basic_auth.ini"
    database = auth_database or f"sqlite:///{config.parent / 'basic_auth.db'}"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database}\n"
        f"auth_cache_ttl_seconds = {int(env.get('MLFLOW_AUTH_CACHE_TTL_S', AUTH_CACHE_TTL_S))}\n"
        f"admin_username = {env.get('MLFLOW_TRACKING_USERNAME', 'admin')}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": env.get("MLFLOW_FLASK_SERVER_SECRET_KEY") or secrets.token_hex(32),
    }


def write_ahead_log(backend_store_uri: str) -> None:
    """Put a SQLite store in write-ahead-log mode, kept in the file: less CPU per tracked trial (BENCHMARKS.md,
    "Measured once") and readers beside a writer. Its `-wal` and `-shm` files belong to it. Other stores are left."""
    if not backend_store_uri.startswith("sqlite:///"):
        return
    path = Path(backend_store_uri.removeprefix("sqlite:///"))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with contextlib.closing(sqlite3.connect(path)) as store:
            store.execute("PRAGMA journal_mode=WAL")
    except sqlite3.Error as exc:
        raise SystemExit(f"mlflow_server: the SQLite store {path} is not usable ({exc}): check its path") from None


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment the server runs with: telemetry and the job runner off, secrets given as files read."""
    env = dict(os.environ if base is None else base)
    for key, value in QUIET_ENV.items():
        env.setdefault(key, value)
    for name in FILE_SECRETS:
        path = env.get(f"{name}_FILE")
        if path and not env.get(name):
            try:
                env[name] = Path(path).read_text().strip()
            except OSError as exc:
                raise SystemExit(f"mlflow_server: {name}_FILE={path}: {exc.strerror or exc}") from None
    return env


def main(argv: list[str] | None = None) -> None:
    """Parse the flags and replace this process with the server."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default: loopback only)")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--data-dir", type=Path, default=Path("mlflow-server"), help="artifacts (and the SQLite store)")
    parser.add_argument("--allowed-hosts", help="Host headers to accept, e.g. mlflow:5000,localhost:5000")
    parser.add_argument(
        "--basic-auth",
        action="store_true",
        default=os.environ.get("MLFLOW_BASIC_AUTH", "").lower() in ("1", "true", "yes"),
        help="require logins (MLflow's basic-auth app); default: MLFLOW_BASIC_AUTH",
    )
    parser.add_argument(
        "--backend-store-uri",
        default=os.environ.get("MLFLOW_BACKEND_STORE_URI") or None,
        help="where runs are kept, e.g. postgresql://user@host:5432/db (default: MLFLOW_BACKEND_STORE_URI, "
        "else SQLite in --data-dir)",
    )
    parser.add_argument("--workers", type=int, default=1, help="server processes (default 1)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: give 1 or more")
    args.data_dir.mkdir(parents=True, exist_ok=True)
    command = server_command(args)
    store = command[command.index("--backend-store-uri") + 1]
    write_ahead_log(store)
    env = server_env()
    if args.basic_auth:
        auth_database = None if store.startswith("sqlite:") else store  # a shared store: its users there too
        env.update(basic_auth(args.data_dir, env, auth_database))
        command += ["--app-name", "basic-auth"]
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()
