"""Write the Secrets' values for kustomization.yaml into deploy/kuberay/secrets/ (git-ignored), once.

    python deploy/kuberay/make_secrets.py      # then: kubectl apply -k deploy/kuberay

Each value is generated here (hex, safe inside a database URI), written to a file only its owner can read, and
kept on later runs so that the cluster, the database and the logins keep their credentials. Nothing is printed.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

SECRETS = {  # file -> the keys the manifests read from that Secret
    "ray-token.env": ("auth_token",),
    "postgres.env": ("password",),
    "mlflow.env": ("admin-password", "flask-secret-key"),
}


def write_secrets(folder: Path) -> list[Path]:
    """Create the env files that do not exist yet under `folder`; returns the ones written."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = []
    for name, keys in SECRETS.items():
        path = folder / name
        if path.exists():
            continue
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.writelines(f"{key}={secrets.token_hex(32)}\n" for key in keys)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """Write what is missing and say which files hold the values."""
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent / "secrets"
    written = write_secrets(folder)
    kept = sorted(set(SECRETS) - {p.name for p in written})
    print(f"secrets in {folder}: written {[p.name for p in written]}, kept {kept}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
