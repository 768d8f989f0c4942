"""What a run records so that it can be redone: the code's commit, package versions, the command."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PACKAGES = ("ray", "mlflow", "optuna", "scikit-learn", "pandas", "numpy", "scipy")


def git_commit(path: Path | str = ".") -> str:
    """The commit checked out at `path`; `GIT_COMMIT` from the environment where there is no git (an image)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True, timeout=10, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return os.environ.get("GIT_COMMIT", "unknown")


def git_dirty(path: Path | str = ".") -> bool | None:
    """True when tracked files differ from the commit; None outside a git repository."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=path,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return bool(out.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions() -> dict[str, str]:
    """Versions of Python and of the packages that decide a trial's result."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def lineage_tags(project_root: Path) -> dict[str, str]:
    """Tags for an MLflow run: commit, whether the tree was dirty, versions, the command line."""
    dirty = git_dirty(project_root)
    tags = {
        "git_commit": git_commit(project_root),
        "git_dirty": "unknown" if dirty is None else str(dirty).lower(),
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:5000],
    }
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags
