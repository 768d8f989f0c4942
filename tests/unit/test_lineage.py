"""The code's lineage: from git in a clone, from the build-time record in an image, and what changes it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from search.common import lineage


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    (tmp_path / "search").mkdir()
    (tmp_path / "search" / "run.py").write_text("print('search')\n")
    (tmp_path / "trainables").mkdir()
    (tmp_path / "trainables" / "models.py").write_text("MODELS = 1\n")
    (tmp_path / "README.md").write_text("not code\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "-m", "first")
    return tmp_path


def test_a_clean_clone_records_its_commit_and_digest_of_the_code_files(repo, monkeypatch):
    monkeypatch.delenv(lineage.RECORD_VARIABLE, raising=False)
    found = lineage.code_lineage(repo)
    assert found["git_commit"] == git(repo, "rev-parse", "HEAD")
    assert found["git_dirty"] == "false"
    assert found["code_digest"].startswith("sha256:")
    (repo / "README.md").write_text("docs change\n")  # not code: same digest, but the tree is dirty
    assert lineage.code_lineage(repo)["code_digest"] == found["code_digest"]
    (repo / "trainables" / "models.py").write_text("MODELS = 2\n")
    edited = lineage.code_lineage(repo)
    assert edited["git_dirty"] == "true" and edited["code_digest"] != found["code_digest"]


def test_the_digest_is_gits_blob_id_of_each_file(repo):
    paths = ["search/run.py", "trainables/models.py"]
    blobs = git(repo, "ls-files", "-s", *paths)
    ours = lineage.code_digest(repo, paths)
    import hashlib

    expected = hashlib.sha256()
    for line in sorted(blobs.splitlines(), key=lambda x: x.split("\t")[1]):
        meta, path = line.split("\t")
        expected.update(f"{path}\0{meta.split()[1]}\n".encode())
    assert ours == "sha256:" + expected.hexdigest()


def test_an_image_reads_the_build_record_and_notices_code_changed_since(repo, tmp_path_factory, monkeypatch):
    record = tmp_path_factory.mktemp("etc") / "code-lineage.json"
    monkeypatch.setattr(lineage, "__file__", str(repo / "search" / "common" / "lineage.py"))
    assert lineage.main(["write", str(record)]) == 0
    commit = git(repo, "rev-parse", "HEAD")
    subprocess.run(["rm", "-rf", str(repo / ".git")], check=True)  # as the image: code, no .git
    monkeypatch.setenv(lineage.RECORD_VARIABLE, str(record))
    built = lineage.code_lineage(repo)
    assert built["git_commit"] == commit and built["git_dirty"] == "false"
    (repo / "search" / "run.py").write_text("print('edited in the container')\n")
    changed = lineage.code_lineage(repo)
    assert changed["git_commit"] == commit and changed["git_dirty"] == "true"
    assert changed["code_digest"] != built["code_digest"]


def test_no_git_and_no_record_is_unknown_not_a_guess(tmp_path, monkeypatch):
    monkeypatch.delenv(lineage.RECORD_VARIABLE, raising=False)
    monkeypatch.setenv("GIT_COMMIT", "abc123")  # no longer read: a hand-set variable can lie
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert lineage.code_lineage(tmp_path) == {"git_commit": "unknown", "git_dirty": "unknown", "code_digest": "unknown"}
    monkeypatch.setenv(lineage.RECORD_VARIABLE, str(tmp_path / "absent.json"))
    assert lineage.code_lineage(tmp_path)["git_commit"] == "unknown"


def test_a_record_written_without_git_says_unknown_and_dirty(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    (tmp_path / "search" / "common").mkdir(parents=True)
    monkeypatch.setattr(lineage, "__file__", str(tmp_path / "search" / "common" / "lineage.py"))
    assert lineage.main(["write", str(tmp_path / "rec.json")]) == 0
    monkeypatch.setenv(lineage.RECORD_VARIABLE, str(tmp_path / "rec.json"))
    found = lineage.code_lineage(tmp_path)
    assert found["git_commit"] == "unknown" and found["git_dirty"] == "true"


def test_usage_errors_exit_2(capsys):
    assert lineage.main([]) == 2 and lineage.main(["write"]) == 2
    assert lineage.main(["show"]) == 2
    assert "usage: python search/common/lineage.py write FILE" in capsys.readouterr().err


def test_the_build_stage_runs_it_as_a_script_with_no_install(tmp_path):
    """Dockerfile.ray runs `python search/common/lineage.py write FILE` before the project is installed: `-S` (no
    site-packages, so no editable install) proves the script finds the project itself."""
    import sys

    root = Path(lineage.__file__).resolve().parents[2]
    out = tmp_path / "lineage.json"
    run = [sys.executable, "-S", str(root / "search/common/lineage.py"), "write", str(out)]
    done = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-1000:]
    assert out.is_file() and "git_commit" in out.read_text()
