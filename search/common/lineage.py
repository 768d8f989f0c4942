"""What a run records so that it can be redone: the code's commit (and whether the code differed from it), a digest
of the code, package versions, the command.

In a clone, git answers; in an image, the record its build wrote (`write FILE`), named by `CODE_LINEAGE_FILE`, with
the digest of the files on disk compared to the record's (docs/cluster.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

if __package__ in (None, ""):  # run as a script (Dockerfile.ray's build stage): the project's root on the path
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from search.common import contract as c  # noqa: E402

PACKAGES = ("ray", "mlflow", "optuna", "scikit-learn", "pandas", "numpy", "scipy")
CODE_DIRS = ("search", "trainables", "cluster")  # what decides a trial's result and a release
RECORD_VARIABLE = "CODE_LINEAGE_FILE"


def _git(root: Path | str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout
    except (OSError, subprocess.SubprocessError):
        return None


def code_digest(root: Path | str, paths: list[str]) -> str:
    """sha256 over each path and the git blob id of its content on disk (a missing file counts as changed)."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        try:
            data = (Path(root) / path).read_bytes()
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        except OSError:
            blob = "missing"
        digest.update(f"{path}\0{blob}\n".encode())
    return "sha256:" + digest.hexdigest()


def from_git(root: Path | str) -> dict | None:
    """The commit, dirty flag, tracked code files and their digest, from git; None outside a repository."""
    commit = _git(root, "rev-parse", "HEAD")
    listed = _git(root, "ls-files", "-z", "--", *CODE_DIRS)
    status = _git(root, "status", "--porcelain", "--untracked-files=no")
    if commit is None or listed is None or status is None:
        return None
    paths = [p for p in listed.split("\0") if p]
    return {c.GIT_COMMIT: commit.strip(), c.GIT_DIRTY: bool(status.strip()), "paths": paths,
            c.CODE_DIGEST: code_digest(root, paths)}  # fmt: skip


def from_record(root: Path | str, record_file: Path | str) -> dict | None:
    """The record written at build time, its dirty flag set when the code on disk is not the code recorded."""
    try:
        record = json.loads(Path(record_file).read_text())
        paths, recorded = list(record["paths"]), record[c.CODE_DIGEST]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    now = code_digest(root, paths)
    return {**record, c.GIT_DIRTY: bool(record.get(c.GIT_DIRTY)) or now != recorded, c.CODE_DIGEST: now}


def code_lineage(root: Path | str) -> dict:
    """`git_commit`, `git_dirty` ('true', 'false' or 'unknown') and `code_digest` of the code at `root`."""
    found = from_git(root)
    if found is None and os.environ.get(RECORD_VARIABLE):
        found = from_record(root, os.environ[RECORD_VARIABLE])
    if found is None:
        return {c.GIT_COMMIT: "unknown", c.GIT_DIRTY: "unknown", c.CODE_DIGEST: "unknown"}
    return {c.GIT_COMMIT: found[c.GIT_COMMIT], c.GIT_DIRTY: str(found[c.GIT_DIRTY]).lower(),
            c.CODE_DIGEST: found[c.CODE_DIGEST]}  # fmt: skip


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
    """Tags for an MLflow run: commit, whether the code differed from it, its digest, versions, the command."""
    tags = {**code_lineage(project_root), "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:5000]}
    tags.update({f"version.{k}": v for k, v in package_versions().items()})
    return tags


def main(argv: list[str] | None = None) -> int:
    """`write FILE`: record the repository's lineage (Dockerfile.ray's build stage)."""
    argv = sys.argv[1:] if argv is None else argv
    root = Path(__file__).resolve().parents[2]
    if argv[:1] != ["write"] or len(argv) != 2:
        print("usage: python search/common/lineage.py write FILE", file=sys.stderr)
        return 2
    found = from_git(root) or {c.GIT_COMMIT: "unknown", c.GIT_DIRTY: True, "paths": [], c.CODE_DIGEST: "unknown"}
    Path(argv[1]).write_text(json.dumps(found, indent=1) + "\n")
    print(f"lineage: {found[c.GIT_COMMIT]} (dirty: {str(found[c.GIT_DIRTY]).lower()}), {len(found['paths'])} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
