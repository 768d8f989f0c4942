"""Public real tables end to end, as a user brings them: text columns, empty cells, ID, date and constant columns,
rare classes. Each table comes offline from a package (palmerpenguins, vega_datasets), written as the CSV a user
would have.

The passenger list of the penguin world (`penguins-raw.csv`) goes the whole way with no flag beyond `--dataset`
and `--target`: search, release, `--verify`, `mlflow models serve` of `@champion` answering raw rows with a missing
number, a missing category and a category never seen, and the report. Seattle's weather (rare classes, a date) and
the cars table (names, gaps, a date, and `--drop`) check the metric chosen and the overrides recorded, and go the
whole way too, on shorter searches.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from table_helpers import ROOT, package_file, raw_rows, run, search, serve_rows

from search.common import contract as c
from search.common.lookup import find_search

pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A working folder holding the tables as CSV files; MLflow's default `sqlite:///mlflow.db` lands here."""
    here = tmp_path_factory.mktemp("tables")
    (here / "penguins-raw.csv").write_bytes(package_file("palmerpenguins", "data", "penguins-raw.csv").read_bytes())
    (here / "weather.csv").write_bytes(package_file("vega_datasets", "_data", "seattle-weather.csv").read_bytes())
    pd.read_json(package_file("vega_datasets", "_data", "cars.json")).to_csv(here / "cars.csv", index=False)
    return here


@pytest.fixture(scope="module")
def penguins(folder) -> dict:
    """The raw penguin table searched with no flag but --dataset and --target, released and verified."""
    search_id, said = search(folder, "--dataset", "penguins-raw.csv", "--target", "Species")
    released = run(folder, str(ROOT / "search" / "release.py"), "--no-tag")
    verified = run(folder, str(ROOT / "search" / "release.py"), "--verify")
    return {"search_id": search_id, "said": said, "released": released.stdout, "verified": verified.stdout}


def test_the_roles_are_inferred_printed_and_recorded(folder, penguins):
    said = penguins["said"]
    for column, role in [("Individual ID", "id"), ("Region", "constant"), ("Date Egg", "datetime"),
                         ("Island", "categorical"), ("Delta 15 N (o/oo)", "numeric")]:  # fmt: skip
        assert any(line.startswith(column) and f" {role} " in line for line in said.splitlines()), (column, said)
    assert "metric val_accuracy: the largest class has 2.2x" in said or "metric val_accuracy:" in said
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    parent = find_search(client, penguins["search_id"])
    roles = {col["name"]: col for col in json.loads(parent.data.tags[c.COLUMN_ROLES])}
    assert roles["Date Egg"]["date_format"] == "%Y-%m-%d" and roles["Comments"]["missing"] > 200
    assert parent.data.tags[c.METRIC_REASON].endswith("about even") and parent.data.params[c.METRIC] == c.VAL_ACCURACY
    trial = client.search_runs([parent.info.experiment_id], f"tags.{c.SEARCH_ID} = '{penguins['search_id']}' "
                               f"and tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}'", max_results=1)[0]  # fmt: skip
    assert {c.VAL_BALANCED_ACCURACY, c.VAL_ROC_AUC} <= set(trial.data.metrics)


def test_the_release_takes_raw_rows_and_verifies(folder, penguins):
    assert "verify OK" in penguins["verified"]
    assert "test_balanced_accuracy" in penguins["released"]
    name = c.model_name(c.experiment_name("penguins-raw"))
    mlflow.set_tracking_uri(f"sqlite:///{folder}/mlflow.db")
    inputs = {col.name: col for col in mlflow.models.get_model_info(f"models:/{name}@champion").signature.inputs}
    assert inputs["Island"].type.name == "string" and not inputs["Island"].required
    assert inputs["Sample Number"].type.name == "double"  # a whole number that a served row may leave out
    card = (folder / "releases" / name / "v1" / "model_card.md").read_text()
    assert "| Individual ID | id |" in card and "| Date Egg | datetime |" in card


def test_the_champion_serves_rows_with_gaps_and_unseen_categories(folder, penguins):
    name = c.model_name(c.experiment_name("penguins-raw"))
    table = pd.read_csv(folder / "penguins-raw.csv")
    rows = raw_rows(table, "Species", "Culmen Length (mm)", "Island", "Atlantis")
    status, answer = serve_rows(folder, f"models:/{name}@champion", rows)
    assert status == 200, answer
    assert len(answer["predictions"]) == 3 and set(answer["predictions"]) <= set(table["Species"])


def test_the_report_of_a_real_table(folder, penguins):
    done = run(folder, str(ROOT / "search" / "report.py"))
    assert f"report of search {penguins['search_id']}" in done.stdout
    report = (folder / "reports" / penguins["search_id"] / "experiment_report.md").read_text()
    assert "## Columns" in report and "| Individual ID | id | 0 | dropped: a distinct value per row |" in report


def test_rare_classes_choose_balanced_accuracy(folder):
    search_id, said = search(folder, "--dataset", "weather.csv", "--target", "weather", "--num-samples", "6")
    assert "metric val_balanced_accuracy: the largest class" in said and "'snow'" in said
    client = MlflowClient(f"sqlite:///{folder}/mlflow.db")
    parent = find_search(client, search_id)
    assert parent.data.params[c.METRIC] == c.VAL_BALANCED_ACCURACY
    assert "accuracy would reward ignoring it" in parent.data.tags[c.METRIC_REASON]
    table = pd.read_csv(folder / "weather.csv")
    rows = table.drop(columns=["weather"]).head(3).astype(object)
    rows.loc[0, "precipitation"] = None  # a missing number
    rows.loc[1, "date"] = None  # a missing date
    rows.loc[2, "date"] = "2031-02-30"  # a date that is none
    whole_way(folder, search_id, "weather", rows, set(table["weather"]))


def test_overrides_are_recorded_and_applied(folder):
    args = ["--dataset", "cars.csv", "--target", "Origin", "--num-samples", "3", "--drop", "Name,Acceleration"]
    search_id, said = search(folder, *args, "--categorical", "Cylinders")
    assert any(line.startswith("Cylinders") and " categorical " in line for line in said.splitlines())
    parent = find_search(MlflowClient(f"sqlite:///{folder}/mlflow.db"), search_id)
    assert parent.data.params[c.DROP] == "Name,Acceleration" and parent.data.params[c.CATEGORICAL] == "Cylinders"
    roles = {col["name"]: col["role"] for col in json.loads(parent.data.tags[c.COLUMN_ROLES])}
    assert roles["Name"] == roles["Acceleration"] == "dropped" and roles["Year"] == "datetime"
    table = pd.read_csv(folder / "cars.csv")
    rows = raw_rows(table, "Origin", "Horsepower", "Cylinders", 7)  # --categorical Cylinders: 7 was never seen
    whole_way(folder, search_id, "cars", rows, set(table["Origin"]))


def whole_way(folder: Path, search_id: str, dataset: str, rows: pd.DataFrame, labels: set) -> None:
    """The rest of the loop for a searched table: release, --verify, serve raw rows (gaps, an unseen value) and the
    report."""
    released = run(folder, str(ROOT / "search" / "release.py"), "--search-id", search_id, "--no-tag")
    name = c.model_name(c.experiment_name(dataset))
    assert f"registered {name}" in released.stdout or f"found {name}" in released.stdout
    verified = run(folder, str(ROOT / "search" / "release.py"), "--verify", "--model-name", name)
    assert "verify OK" in verified.stdout
    status, answer = serve_rows(folder, f"models:/{name}@champion", rows)
    assert status == 200 and len(answer["predictions"]) == 3 and set(answer["predictions"]) <= labels, answer
    run(folder, str(ROOT / "search" / "report.py"), "--search-id", search_id)
    assert (folder / "reports" / search_id / "experiment_report.md").read_text().count("## Columns") == 1
