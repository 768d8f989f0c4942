"""The release's git checks and tag in real git repositories made in tmp folders (no servers)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from search.common.errors import CommandError
from search.releasing import git_tag

MODEL = "m"  # the registered model the tags name


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> tuple[Path, str]:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.email", "t@example.invalid")
    git(path, "config", "user.name", "T")
    git(path, "config", "tag.gpgsign", "false")
    (path / "a.txt").write_text("a\n")
    git(path, "add", "a.txt")
    git(path, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "a")
    return path, git(path, "rev-parse", "HEAD")


def test_annotated_tag_on_the_given_commit_and_idempotent(repo):
    path, commit = repo
    (path / "b.txt").write_text("b\n")
    git(path, "add", "b.txt")
    git(path, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "b")
    check = git_tag.preflight(path, commit[:10], MODEL, 4, allow_dirty=False)
    assert (check.commit, check.tag, check.exists, check.dirty) == (commit, "m-v4", False, False)
    text = git_tag.message("m", 4, "test_accuracy", 0.96666, "s1", "r1")
    assert git_tag.create(check, text) is True and git_tag.create(check, text) is False
    assert git(path, "cat-file", "-t", "refs/tags/m-v4") == "tag" and git_tag.tagged_commit(path, "m-v4") == commit
    assert git(path, "tag", "-l", "--format=%(subject)", "m-v4") == "m version 4: test_accuracy=0.9667"
    assert git_tag.preflight(path, commit, MODEL, 4, allow_dirty=False).exists


@pytest.mark.parametrize(
    "case, expected",
    [
        ("dirty", "is dirty"),
        ("taken", "already points at"),
        ("unknown", "is not in"),
        ("outside", "is not a git repository"),
        ("remote", "remote 'origin' does not exist"),
    ],
)
def test_refusals(repo, tmp_path, case, expected, monkeypatch):
    monkeypatch.delenv("CODE_LINEAGE_FILE", raising=False)
    path, commit = repo
    where, push = path, False
    if case == "dirty":
        (path / "a.txt").write_text("changed\n")
    elif case == "taken":
        (path / "c.txt").write_text("c\n")
        git(path, "add", "c.txt")
        git(path, "-c", "commit.gpgsign=false", "commit", "-q", "-m", "c")
        git(path, "tag", "-a", "m-v1", "HEAD", "-m", "other")
    elif case == "unknown":
        commit = "0" * 40
    elif case == "outside":
        where = tmp_path / "plain"
        where.mkdir()
    elif case == "remote":
        push = True
    with pytest.raises(CommandError, match=expected):
        git_tag.preflight(where, commit, MODEL, 1, allow_dirty=False, push=push)


def test_inside_an_image_the_refusal_names_the_host_command(tmp_path, monkeypatch):
    monkeypatch.setenv("CODE_LINEAGE_FILE", "/etc/code-lineage.json")
    monkeypatch.setenv("MLFLOW_UI_URL", "http://127.0.0.1:5123")
    with pytest.raises(CommandError) as refused:
        git_tag.preflight(tmp_path, "0" * 40, MODEL, 1, allow_dirty=False)
    line = str(refused.value)
    assert "\n" not in line and "release on the host" in line
    assert 'eval "$(docker compose exec -T ray-head python cluster/credentials.py show)"' in line
    assert line.endswith("python search/release.py --tracking-uri http://127.0.0.1:5123")


def test_allow_dirty_and_push_to_a_bare_remote(repo, tmp_path):
    path, commit = repo
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    git(path, "remote", "add", "origin", str(remote))
    (path / "a.txt").write_text("changed\n")
    check = git_tag.preflight(path, commit, MODEL, 2, allow_dirty=True, push=True)
    assert check.dirty
    git_tag.create(check, "m version 2")
    git_tag.push(check, "origin")
    git_tag.push(check, "origin")  # again: nothing to do, no error
    assert git(remote, "rev-parse", "m-v2^{commit}") == commit
