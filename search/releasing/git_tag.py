"""The release's git tag: annotated `<model>-v<N>` on the commit that trained the model, checked (`preflight`) before
the release writes anything; `create` and `push` are safe to repeat."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from search.common import contract
from search.common.connect import LOGIN_ON_HOST
from search.common.errors import CommandError
from search.common.lineage import RECORD_VARIABLE


def _git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    try:
        result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CommandError(f"git {' '.join(args)} failed to run: {exc}") from None
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        raise CommandError(f"git {' '.join(args)} failed in {repo}: {message[-1] if message else result.returncode}")
    return result


def tagged_commit(repo: Path, tag: str) -> str | None:
    """The commit `tag` points at, or None when there is no such tag."""
    result = _git(repo, "rev-parse", "-q", "--verify", f"refs/tags/{tag}^{{commit}}", check=False)
    return result.stdout.strip() if result.returncode == 0 else None


@dataclass(frozen=True)
class Preflight:
    """What the checks found: the repository, the full training commit, whether the tag exists already."""

    repo: Path
    commit: str
    tag: str
    exists: bool
    dirty: bool


def preflight(
    repo: Path,
    commit: str,
    model: str,
    version: int | str,
    allow_dirty: bool,
    push: bool = False,
    remote: str = "origin",
) -> Preflight:
    """Every refusal, checked before the release registers anything."""
    repo = Path(repo)
    inside = _git(repo, "rev-parse", "--is-inside-work-tree", check=False)
    if inside.returncode != 0 or inside.stdout.strip() != "true":
        if os.environ.get(RECORD_VARIABLE):  # in an image: the clone to tag is on the host
            published = os.environ.get("MLFLOW_UI_URL", "http://127.0.0.1:5000")
            raise CommandError(
                "this container holds no clone to tag: release on the host, in your clone: "
                f"{LOGIN_ON_HOST} && python search/release.py --tracking-uri {published}"
            )
        raise CommandError(f"{repo.resolve()} is not a git repository: pass --repo PATH or --no-tag")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    if status and not allow_dirty:
        raise CommandError(f"the working tree of {repo.resolve()} is dirty: commit or stash first, or --allow-dirty")
    found = _git(repo, "rev-parse", "-q", "--verify", f"{commit}^{{commit}}", check=False)
    if not commit or commit == "unknown" or found.returncode != 0:
        raise CommandError(f"the training commit {commit!r} is not in {repo.resolve()}: fetch it, or --no-tag")
    full = found.stdout.strip()
    tag = contract.git_tag_name(model, version)
    points = tagged_commit(repo, tag)
    if points is not None and points != full:
        raise CommandError(f"tag {tag} already points at {points[:12]}, not the training commit {full[:12]}")
    if _git(repo, "var", "GIT_COMMITTER_IDENT", check=False).returncode != 0:
        raise CommandError("git has no user.name/user.email here: an annotated tag needs them (git config)")
    if push and _git(repo, "remote", "get-url", remote, check=False).returncode != 0:
        raise CommandError(f"git remote {remote!r} does not exist in {repo.resolve()}: fix --remote or drop --push")
    return Preflight(repo, full, tag, points is not None, bool(status))


def message(model_name: str, version: int | str, metric: str, score: float, search_id: str, run_id: str) -> str:
    """The annotated tag's message: model, version, test score and where it came from."""
    return (
        f"{model_name} version {version}: {metric}={score:.4f}\n\n"
        f"Registered model {model_name} v{version}, retrained from trial run {run_id} of search {search_id}.\n"
    )


def create(check: Preflight, text: str) -> bool:
    """Create the annotated tag on the training commit; False when it was already there."""
    points = tagged_commit(check.repo, check.tag)
    if points == check.commit:
        return False
    if points is not None:
        raise CommandError(f"tag {check.tag} already points at {points[:12]}, not the training commit")
    _git(check.repo, "tag", "-a", check.tag, check.commit, "-m", text)
    return True


def push(check: Preflight, remote: str) -> None:
    """Push the tag to `remote` (a no-op for the remote when it has it already)."""
    _git(check.repo, "push", remote, f"refs/tags/{check.tag}")
