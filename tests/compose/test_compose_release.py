"""The loop closes on compose: a search in the head records the clone's own commit (no variable set by hand), the
release runs on the host with the login `credentials.py show` prints (eval'd), tags that commit in the clone and
verifies; a commit made after the images were built is not claimed by the next search."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys

import pytest
from cluster_harness import git, tail

from search.common import contract

pytestmark = pytest.mark.compose
EXPERIMENT = "compose_release"


def on_host(cluster, command: str) -> subprocess.CompletedProcess:
    """`command` in the clone on the host, after README's `eval "$(docker compose exec ... credentials.py show)"`."""
    compose = shlex.join([*cluster.project.compose, "-p", cluster.project.name])
    shown = f"{compose} exec -T ray-head python cluster/credentials.py show"
    env = {k: v for k, v in {**os.environ, **cluster.project.env}.items() if not k.startswith(("MLFLOW_", "RAY_"))}
    env["PATH"] = f"{os.path.dirname(sys.executable)}:{env['PATH']}"  # `python` is this environment's
    script = f'set -e; eval "$({shown})"; {command}'
    return subprocess.run(["bash", "-c", script], cwd=cluster.project.folder, env=env, capture_output=True,
                          text=True, timeout=900)  # fmt: skip


def test_release_from_the_host_tags_the_commit_the_head_ran(cluster):
    search_id, _ = cluster.search(EXPERIMENT, 4)
    head = git(cluster.project.folder, "rev-parse", "HEAD")
    trials = cluster.trials(EXPERIMENT, search_id)
    assert {t.data.tags[contract.GIT_COMMIT] for t in trials} == {head}

    uri = f"--tracking-uri {cluster.tracking} --experiment {EXPERIMENT}"
    released = on_host(cluster, f"python search/release.py {uri}")
    assert released.returncode == 0, tail(released)
    model = contract.model_name(EXPERIMENT)
    tag = contract.git_tag_name(model, 1)
    assert git(cluster.project.folder, "rev-parse", f"{tag}^{{commit}}") == head
    assert (cluster.project.folder / "releases" / model / "v1").is_dir(), "the model card is written in the clone"
    verified = on_host(cluster, f"python search/release.py {uri} --verify")
    assert verified.returncode == 0 and "predictions identical" in verified.stdout, tail(verified)


def test_a_commit_after_the_build_is_not_claimed_by_the_next_search(cluster):
    folder = cluster.project.folder
    built = git(folder, "rev-parse", "HEAD")
    with open(folder / "trainables" / "__init__.py", "a") as edited:
        edited.write("# edited after the images were built\n")
    git(folder, "commit", "-qam", "an edit the images do not hold")
    search_id, _ = cluster.search(f"{EXPERIMENT}_edited", 2)
    trials = cluster.trials(f"{EXPERIMENT}_edited", search_id)
    assert trials and {t.data.tags[contract.GIT_COMMIT] for t in trials} == {built}
    assert git(folder, "rev-parse", "HEAD") != built
