"""Numbers as targets, end to end: `--dataset diabetes` with no other flag (search, release, `--verify`, `mlflow
models serve`, report); the cars table with its miles per gallon to predict (names, gaps, a date, an origin never
seen) searched on two objectives; and the alias gate keeping its holder from a release with a higher RMSE.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow import MlflowClient
from table_helpers import ROOT, package_file, raw_rows, run, search, serve_rows

from search.common import contract as c
from search.common.lookup import find_search, search_trials
from search.common.pareto import front, parse_objectives
from trainables.prepare import TEXT_CHOICES

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
DIABETES = c.model_name(c.experiment_name("diabetes", c.REGRESSION))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A user's working folder: MLflow's default `sqlite:///mlflow.db` and the tables land here."""
    here = tmp_path_factory.mktemp("numbers")
    pd.read_json(package_file("vega_datasets", "_data", "cars.json")).to_csv(here / "cars.csv", index=False)
    return here


def client_of(folder: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{folder}/mlflow.db")


@pytest.fixture(scope="module")
def diabetes(folder) -> dict:
    """`--dataset diabetes` and nothing else, released and verified."""
    search_id, said = search(folder, "--dataset", "diabetes")
    released = run(folder, str(ROOT / "search" / "release.py"), "--no-tag")
    verified = run(folder, str(ROOT / "search" / "release.py"), "--verify")
    return {"search_id": search_id, "said": said, "released": released.stdout, "verified": verified.stdout}


def test_the_task_is_read_off_the_target_said_and_recorded(folder, diabetes):
    assert "task regression: the target holds 214 distinct whole numbers" in diabetes["said"]
    assert "metric val_rmse:" in diabetes["said"]
    client = client_of(folder)
    parent = find_search(client, diabetes["search_id"])
    assert client.get_experiment(parent.info.experiment_id).name == "diabetes_regression"
    assert parent.data.params[c.TASK] == c.REGRESSION and parent.data.params[c.METRIC] == c.VAL_RMSE
    assert "214 distinct whole numbers" in parent.data.tags[c.TASK_REASON]
    assert parent.data.metrics[c.BEST_VAL_RMSE] > 0 and c.BEST_VAL_ACCURACY not in parent.data.metrics
    trials = search_trials(client, parent.info.experiment_id, diabetes["search_id"], finished=True)
    assert len(trials) == 30 and {t.params[c.MODEL] for t in trials} >= {"linear", "svm", "gradient_boosting"}
    for trial in trials:  # every trial scored as a regressor, out of fold, with its sample of predictions
        assert {c.VAL_RMSE, c.VAL_MAE, c.VAL_R2, c.TRAIN_RMSE} <= set(trial.metrics), trial.params
        assert c.VAL_ACCURACY not in trial.metrics and trial.params[c.TASK] == c.REGRESSION
    best = min(trials, key=lambda t: t.metrics[c.VAL_RMSE])
    run_ = client.get_run(best.run_id)
    pairs = json.loads(run_.data.tags[c.PREDICTED_ACTUAL])
    assert len(pairs["actual"]) == len(pairs["predicted"]) == 150
    assert c.PREDICTED_ACTUAL_PNG in [a.path for a in client.list_artifacts(best.run_id)]


def test_the_release_scores_verifies_and_serves_numbers(folder, diabetes):
    assert "verify OK" in diabetes["verified"]
    assert "test_rmse" in diabetes["released"] and "test_r2" in diabetes["released"]
    card = (folder / "releases" / DIABETES / "v1" / "model_card.json").read_text()
    test = json.loads(card)["test_metrics"]
    assert 0 < test[c.TEST_RMSE] < test[c.TARGET_STD]  # better than predicting the mean
    from sklearn.datasets import load_diabetes

    rows = load_diabetes(as_frame=True).data.head(4)
    status, answer = serve_rows(folder, f"models:/{DIABETES}@champion", rows)
    assert status == 200, answer
    assert len(answer["predictions"]) == 4 and all(isinstance(p, float) for p in answer["predictions"])


def test_the_report_reads_as_a_regression(folder, diabetes):
    run(folder, str(ROOT / "search" / "report.py"))
    report = (folder / "reports" / diabetes["search_id"] / "experiment_report.md").read_text()
    assert "lower `val_rmse`" in report and "| val_rmse |" in report
    assert "val_accuracy" not in report and "confusion" not in report.lower()


def test_a_release_with_a_higher_rmse_keeps_the_holder(folder, diabetes):
    search(folder, "--dataset", "diabetes", "--models", "knn", "--num-samples", "2", "--warm-start", "off")
    done = run(folder, str(ROOT / "search" / "release.py"), "--no-tag")
    assert "@champion stays on v1" in done.stdout and "does not beat" in done.stdout
    holder = client_of(folder).get_model_version_by_alias(DIABETES, "champion")
    assert str(holder.version) == "1"


def test_a_real_table_with_a_number_to_predict_on_two_objectives(folder):
    search_id, said = search(folder, "--dataset", "cars.csv", "--target", "Miles_per_Gallon", "--num-samples", "8",
                             "--objectives", "val_rmse,predict_ms")  # fmt: skip
    assert "task regression: the target holds numbers with fractions" in said
    assert "rows of cars.csv have no 'Miles_per_Gallon': left out" in said
    client = client_of(folder)
    parent = find_search(client, search_id)
    trials = search_trials(client, parent.info.experiment_id, search_id, finished=True)
    tagged = {t.run_id for t in trials if t.tags.get(c.PARETO_FRONT) == "true"}
    expected = {t["run_id"] for t in front(trials, parse_objectives("val_rmse,predict_ms"))}
    assert tagged == expected and tagged
    best_rmse = min(t.metrics[c.VAL_RMSE] for t in trials if t.outcome == c.COMPLETED)
    assert any(t.metrics[c.VAL_RMSE] == best_rmse for t in trials if t.run_id in tagged)  # the lowest RMSE is on it
    assert all(t.params.get(c.TEXT_FEATURES) in TEXT_CHOICES for t in trials)  # the car names: a searched choice
    run(folder, str(ROOT / "search" / "release.py"), "--no-tag", "--search-id", search_id)
    rows = raw_rows(pd.read_csv(folder / "cars.csv"), "Miles_per_Gallon", "Horsepower", "Origin", "Atlantis")
    name = c.model_name(c.experiment_name("cars", c.REGRESSION))
    status, answer = serve_rows(folder, f"models:/{name}@champion", rows)
    assert status == 200, answer
    assert all(5 < p < 60 for p in answer["predictions"]), answer  # miles per gallon, not a class
