"""The loop closes on compose, as README's compose block says, each command run as written (the published ports
aside; `up` and `down` are the shared cluster's start and end): a search in the head records the clone's own
commit (no variable set by hand); the login eval'd on the host; the release there tags that commit in the clone,
writes the card and verifies; the report; `mlflow models serve` of the champion answers raw rows; the search sent
as a Ray job records the same commit. A commit made after the images were built is not claimed by the next search."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from cluster_harness import SEARCH_LINE, git, readme_compose_block, tail

from cluster.processes import stop_processes
from search.common import contract

pytestmark = pytest.mark.compose
EXPERIMENT = "compose_release"
IRIS = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
ROWS = {"setosa": [5.1, 3.5, 1.4, 0.2], "versicolor": [6.4, 3.2, 4.5, 1.5], "virginica": [6.3, 3.3, 6.0, 2.5]}


def predictions(shell, line: str) -> list[str]:
    """Start README's `mlflow models serve` line, post three raw Iris rows once it answers, stop it by PID."""
    port, server = shell.ports[5001], shell.start(line)
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2).read()
                break
            except OSError:
                assert server.poll() is None, f"the server exited:\n{server.stdout.read()[-3000:]}"
                assert time.monotonic() < deadline, "the served model did not answer in 240 s"
                time.sleep(1)
        body = json.dumps({"dataframe_split": {"columns": IRIS, "data": list(ROWS.values())}}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations", body, {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["predictions"]
    finally:
        stop_processes([server.pid])


def test_readme_compose_block_runs_as_written(cluster):
    if cluster.shell is None:
        pytest.skip("README's commands are `docker compose` (v2); this engine has another compose command")
    folder, head = cluster.project.folder, git(cluster.project.folder, "rev-parse", "HEAD")
    ran: dict[str, str] = {}
    for line in readme_compose_block()[1:-1]:
        if line.startswith("mlflow models serve"):
            assert predictions(cluster.shell, line) == list(ROWS), "the champion must predict the raw rows right"
            continue
        result = cluster.shell.run(line)
        assert result.returncode == 0, f"README's `{line}` failed:\n{tail(result)}"
        ran[line.split("#")[0].strip()] = result.stdout

    def output(start: str) -> str:
        return next(out for line, out in ran.items() if line.startswith(start))

    searched = SEARCH_LINE.search(output("docker compose exec ray-head python search/run.py"))
    assert searched, "the search in the head printed no search line"
    trials = cluster.trials(searched[2], searched[1])
    assert trials and {(t.data.tags[contract.GIT_COMMIT], t.data.tags[contract.GIT_DIRTY]) for t in trials} == {
        (head, "false")
    }
    model = contract.model_name(searched[2])
    assert git(folder, "rev-parse", f"{contract.git_tag_name(model, 1)}^{{commit}}") == head
    assert (folder / "releases" / model / "v1").is_dir(), "the model card is written in the clone"
    assert "predictions identical" in output("python search/release.py --verify")
    assert (folder / "reports" / searched[1] / "experiment_report.md").is_file()

    job = SEARCH_LINE.search(output("ray job submit"))
    assert job, "the Ray job printed no search line"
    job_trials = cluster.trials(job[2], job[1])
    assert job_trials and {t.data.tags[contract.GIT_COMMIT] for t in job_trials} == {head}


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
