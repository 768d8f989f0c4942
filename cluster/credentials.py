"""The compose cluster's secrets: generated on first start into a volume, kept across restarts, shown on request.

(Not named secrets.py: run as a script from cluster/, it would shadow the standard library's `secrets`.)

    python cluster/credentials.py init --dir /secrets      # the one-shot `secrets` service: create what is missing
    eval "$(docker compose exec -T ray-head python cluster/credentials.py show)"   # the login, on the host

Each secret is one file (mode 600); `init` never overwrites one, and uses a variable of the same name (from `.env`)
instead of a generated value. Standard library only.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path(os.environ.get("CLUSTER_SECRETS_DIR", "/secrets"))


@dataclass(frozen=True)
class Secret:
    """One generated secret: its file name, the variable that may set it, and what it is for."""

    file: str
    variable: str
    purpose: str


SECRETS = (
    Secret("ray_token", "RAY_AUTH_TOKEN", "Ray token: nodes, drivers, `ray job submit` and the dashboard"),
    Secret("mlflow_admin_password", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLflow admin password (UI and clients)"),
    Secret("flask_secret_key", "MLFLOW_FLASK_SERVER_SECRET_KEY", "MLflow server's session key"),
    Secret("postgres_password", "POSTGRES_PASSWORD", "PostgreSQL password of the tracking store"),
)
PGPASS = "pgpass"  # libpq's password file (PGPASSFILE), for the MLflow server's connection to PostgreSQL


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only, without a moment of wider permissions."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)


def init(directory: Path, env: dict[str, str] | None = None) -> list[str]:
    """Create every missing secret in `directory`; returns the names created (existing ones are kept)."""
    env = dict(os.environ if env is None else env)
    directory.mkdir(parents=True, exist_ok=True)
    created = []
    for secret in SECRETS:
        path = directory / secret.file
        if path.is_file() and path.read_text().strip():
            continue
        write_private(path, (env.get(secret.variable) or secrets.token_urlsafe(32)) + "\n")
        created.append(secret.file)
    password = read(directory, "postgres_password")
    write_private(directory / PGPASS, f"*:*:*:*:{password}\n")
    return created


def read(directory: Path, name: str) -> str:
    """The secret `name` (a file name of SECRETS) from `directory`."""
    return (directory / name).read_text().strip()


def show(directory: Path, username: str) -> str:
    """`export` lines of the variables clients read (Ray token, MLflow login), for `eval "$(...)"` on the host."""
    values = {
        "RAY_AUTH_TOKEN": read(directory, "ray_token"),
        "MLFLOW_TRACKING_USERNAME": username,
        "MLFLOW_TRACKING_PASSWORD": read(directory, "mlflow_admin_password"),
    }
    lines = ["# Ray token (nodes, drivers, `ray job submit`, the dashboard) and the MLflow login (UI and clients)"]
    return "\n".join([*lines, *(f"export {k}={shlex.quote(v)}" for k, v in values.items())])


def main(argv: list[str] | None = None) -> int:
    """`init` or `show`; one line and exit 1 when the secrets directory is missing or unwritable."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["init", "show"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the secrets volume (default /secrets)")
    args = parser.parse_args(argv)
    try:
        if args.action == "init":
            created = init(args.dir)
            print(f"credentials: generated {', '.join(created)}" if created else "secrets: kept the existing ones")
        else:
            print(show(args.dir, os.environ.get("MLFLOW_TRACKING_USERNAME", "admin")))
    except OSError as exc:
        print(f"credentials: {args.dir}: {exc.strerror or exc}: is the secrets volume mounted there?", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
