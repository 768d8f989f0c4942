"""A user's own table on the compose cluster, the two ways docs/cluster.md gives ("Your own table"), each with a real
public table of text columns and empty cells (palmerpenguins' CSVs, offline):

- a CSV in the clone, searched as a Ray job sent from the host with `--working-dir .`: the search records the
  table's path inside the clone, so the release on the host finds it there (tag, card, `--verify`), the report is
  written, and the served `@champion` answers raw rows (a missing number, a missing and an unseen category);
- a CSV copied into the head container (`docker compose cp`), searched there with `docker compose exec`: the
  release on the host refuses in one line naming the table and `--dataset` (exit 2, nothing made), refuses a copy
  that is another table, then releases and verifies from this machine's copy given with `--dataset`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest
from cluster_harness import SEARCH_LINE, git, tail

from cluster.processes import free_port, stop_process_group, wait_for_http
from search.common import contract as c

pytestmark = pytest.mark.compose
CHEAP = ["--num-samples", "4", "--cv-folds", "3", "--models", "logistic_regression,random_forest"]


def penguins(name: str) -> bytes:
    """One of palmerpenguins' tables, as the CSV a user has."""
    return resources.files("palmerpenguins").joinpath("data", name).read_bytes()


def on_host(cluster, *argv: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """A command in the clone on the host, in a terminal where README's login was eval'd and MLflow exported."""
    env = {**cluster.project.env, **cluster.secrets, "MLFLOW_TRACKING_URI": cluster.tracking, "RAY_AUTH_MODE": "token"}
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}")
    return subprocess.run(argv, cwd=cluster.project.folder, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)  # fmt: skip


def python(cluster, *argv: str) -> subprocess.CompletedProcess:
    return on_host(cluster, sys.executable, *argv)


def served(cluster, model: str, rows: pd.DataFrame) -> list:
    """`mlflow models serve` of `model`@champion on the host, answering `rows` (None: an empty cell); stopped after."""
    port = free_port()
    line = ["mlflow", "models", "serve", "-m", f"models:/{model}@champion", "--env-manager", "local"]
    env = {**cluster.project.env, **cluster.secrets, "MLFLOW_TRACKING_URI": cluster.tracking}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    log = cluster.project.folder.parent / f"{cluster.project.folder.name}-serve.log"  # outside the clone
    with open(log, "w") as out:
        server = subprocess.Popen(
            [*line, "-h", "127.0.0.1", "-p", str(port)],
            cwd=cluster.project.folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if not wait_for_http(f"http://127.0.0.1:{port}/ping", timeout=240):
            pytest.fail(f"the served model did not answer in 240 s:\n{log.read_text()[-3000:]}")
        body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", json.dumps(body).encode(),
                                         {"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)["predictions"]
    finally:
        stop_process_group(server.pid)


def released_nothing(cluster, experiment: str, model: str) -> None:
    """No registered model, release run, card or git tag for `model`."""
    client = cluster.mlflow_client()
    assert not client.search_registered_models(f"name = '{model}'"), "a refused release registered a model"
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], "tags.run_type = 'release'")
    assert not runs, "a refused release made a run"
    assert not (cluster.project.folder / "releases" / model).exists()
    assert not git(cluster.project.folder, "tag", "--list", f"{model}-*")


def test_a_table_in_the_clone_goes_as_a_ray_job_and_releases_on_the_host(cluster):
    folder = cluster.project.folder
    (folder / "tables").mkdir(exist_ok=True)
    (folder / "tables" / "penguins-raw.csv").write_bytes(penguins("penguins-raw.csv"))  # untracked, not ignored
    submit = ["ray", "job", "submit", "--address", cluster.dashboard, "--working-dir", ".", "--"]
    job = on_host(cluster, *submit, "python", "search/run.py", "--dataset", "tables/penguins-raw.csv", "--target",
                  "Species", *CHEAP)  # fmt: skip
    found = SEARCH_LINE.search(job.stdout)
    assert job.returncode == 0 and found, f"the job failed:\n{tail(job)}"
    search_id, experiment, parent_id = found[1], found[2], found[3]
    assert experiment == c.experiment_name("penguins-raw")
    trials = cluster.trials(experiment, search_id)
    assert len(trials) == 4 and all(t.info.status == "FINISHED" for t in trials)
    parent = cluster.mlflow_client().get_run(parent_id)
    assert parent.data.params[c.DATASET] == "tables/penguins-raw.csv", "the path inside the clone, not the job's copy"

    model = c.model_name(experiment)
    released = python(cluster, "search/release.py")
    assert released.returncode == 0 and f"registered {model} v1" in released.stdout, tail(released)
    commit = trials[0].data.tags[c.GIT_COMMIT]
    assert git(folder, "rev-parse", f"{c.git_tag_name(model, 1)}^{{commit}}") == commit
    card = (folder / "releases" / model / "v1" / "model_card.md").read_text()
    assert "| Individual ID | id |" in card and "| Island | categorical |" in card
    verified = python(cluster, "search/release.py", "--verify")
    assert verified.returncode == 0 and "predictions identical" in verified.stdout, tail(verified)
    reported = python(cluster, "search/report.py")
    assert reported.returncode == 0, tail(reported)
    assert "## Columns" in (folder / "reports" / search_id / "experiment_report.md").read_text()

    table = pd.read_csv(folder / "tables" / "penguins-raw.csv")
    rows = table.drop(columns=["Species"]).head(3).astype(object)
    rows = rows.where(rows.notna(), None)  # the table's own empty cells (Sex, Comments, ...) stay empty
    rows.loc[0, "Culmen Length (mm)"], rows.loc[1, "Island"], rows.loc[2, "Island"] = None, None, "Atlantis"
    assert served(cluster, model, rows) == table["Species"].head(3).tolist()


def test_a_table_in_the_head_is_searched_there_and_released_from_this_machines_copy(cluster, tmp_path):
    in_head = "/data/penguins.csv"
    assert not Path(in_head).exists(), f"{in_head} must not be on this machine for this test"
    copy = tmp_path / "penguins.csv"  # the user's own copy, outside the clone
    copy.write_bytes(penguins("penguins.csv"))
    cluster.project.run("exec", "-T", "ray-head", "mkdir", "-p", "/data", check=True)
    cluster.project.run("cp", str(copy), f"ray-head:{in_head}", check=True)
    searched = cluster.project.run("exec", "-T", "ray-head", "python", "search/run.py", "--dataset", in_head,
                                   "--target", "species", *CHEAP, timeout=900)  # fmt: skip
    found = SEARCH_LINE.search(searched.stdout)
    assert searched.returncode == 0 and found, f"the search failed:\n{tail(searched)}"
    experiment = found[2]
    assert experiment == c.experiment_name("penguins")
    model = c.model_name(experiment)

    refused = python(cluster, "search/release.py")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, tail(refused)
    assert refused.stderr.strip().splitlines() == [
        f"release: the search's table {in_head} is not on this machine (a search in a container reads the "
        "container's files): give this machine's copy with --dataset PATH"
    ]
    released_nothing(cluster, experiment, model)
    another = tmp_path / "another.csv"
    pd.read_csv(copy).iloc[1:].to_csv(another, index=False)
    refused = python(cluster, "search/release.py", "--dataset", str(another))
    assert refused.returncode == 2 and f"--dataset {another} is not the search's table" in refused.stderr
    released_nothing(cluster, experiment, model)

    released = python(cluster, "search/release.py", "--dataset", str(copy))
    assert released.returncode == 0 and f"registered {model} v1" in released.stdout, tail(released)
    assert (cluster.project.folder / "releases" / model / "v1" / "model_card.md").is_file()
    assert git(cluster.project.folder, "tag", "--list", f"{model}-*") == c.git_tag_name(model, 1)
    version = cluster.mlflow_client().get_model_version(model, "1")
    assert version.tags[c.DATASET_SOURCE] == in_head, "the lineage keeps the path the search read"
    verified = python(cluster, "search/release.py", "--verify", "--dataset", str(copy))
    assert verified.returncode == 0 and "predictions identical" in verified.stdout, tail(verified)
