"""The report's pure parts: trial outcomes, the per-trial table, Markdown cells, and refusing what cannot be read."""

from __future__ import annotations

import contextlib
import io
import re
import time

import pandas as pd
import pytest

from cluster.processes import free_port
from search import report
from search.common.connect import public_uri
from search.common.trials import best_per, outcome, row_dict
from search.common.trials import rank_trials as ranked
from search.reporting.importance import MIN_TRIALS, param_importance, rebuild_study
from search.reporting.report_md import cell, importance_text, table


def row(**kw) -> dict:
    base = {"status": "FINISHED", "val_accuracy": 0.9, "val_f1": 0.9, "cv_folds": "5", "folds_done": 5.0}
    return {**base, **kw}


@pytest.mark.parametrize(
    "kw, expected",
    [
        ({}, "completed"),
        ({"folds_done": 2.0}, "stopped"),
        ({"status": "KILLED"}, "stopped"),
        ({"status": "FAILED", "val_accuracy": None}, "failed"),
        ({"status": "FAILED"}, "failed"),  # a failed run with partial metrics is still failed
        ({"status": "RUNNING"}, "unfinished"),
        ({"val_accuracy": None, "folds_done": None}, "no_result"),
    ],
)
def test_outcome(kw, expected):
    assert outcome(row(**kw)) == expected


def test_row_dict_turns_missing_values_into_none():
    frame = pd.DataFrame({"a": [float("nan")], "b": pd.array([None], dtype="Int64"), "c": ["x"]})
    assert row_dict(frame.iloc[0]) == {"a": None, "b": None, "c": "x"}


def frame() -> pd.DataFrame:
    rows = [
        row(run_id="a", trial_index=0, model="svm", feature_set="basic", val_accuracy=0.95, fit_time_s=0.2),
        row(run_id="b", trial_index=1, model="knn", feature_set="basic", val_accuracy=0.95, fit_time_s=0.1),
        row(run_id="c", trial_index=2, model="svm", feature_set="pca", status="FAILED", val_accuracy=None),
        row(run_id="d", trial_index=3, model="svm", feature_set="pca", val_accuracy=0.99, folds_done=1.0),
    ]
    data = pd.DataFrame(rows)
    data["outcome"] = [outcome(row_dict(r)) for _, r in data.iterrows()]
    return data


def test_ranking_uses_only_complete_trials_and_the_release_tie_break():
    assert [r["run_id"] for r in ranked(frame())] == ["b", "a"]  # tie on accuracy and F1: faster fit wins
    best = best_per(frame(), "feature_set")
    assert best["basic"]["run_id"] == "b" and best["pca"] is None  # d stopped early, c failed


HYPER = {
    "svm": lambda i: {"C": str(10.0 ** (i - 2)), "gamma": str(0.1 * (i + 1))},
    "knn": lambda i: {"n_neighbors": str(2 * i + 1)},
    "logistic_regression": lambda i: {"C": str(10.0**i)},
}


def importance_frame() -> tuple[pd.DataFrame, list[str]]:
    """svm: 7 completed, 1 stopped, 1 failed; knn: 5 completed; logistic_regression: 2 completed (too few)."""
    rows, k = [], 0
    for model, n in (("svm", 9), ("knn", 5), ("logistic_regression", 2)):
        for i in range(n):
            hyper = HYPER[model](i)
            score = {"val_accuracy": 0.9 + 0.01 * ((k * 7) % 9), "val_f1": 0.9}
            rows.append(row(run_id=f"r{k}", trial_index=k, model=model, feature_set=("basic", "pca")[i % 2],
                            **score, **hyper))  # fmt: skip
            k += 1
    data = pd.DataFrame(rows)
    data.loc[7, "folds_done"] = 2.0  # svm: stopped
    data.loc[8, ["status", "val_accuracy"]] = ["FAILED", None]  # svm: failed
    data["outcome"] = [outcome(row_dict(r)) for _, r in data.iterrows()]
    return data, ["C", "gamma", "n_neighbors"]


def test_importance_text_gives_each_family_its_n_of_the_trial_table():
    trials, hyper = importance_frame()
    text = importance_text(param_importance(rebuild_study(trials, hyper)))
    done = trials[trials["outcome"] == "completed"]["model"].value_counts()
    assert f"over all n={done.sum()} completed trials" in text
    panels = dict(re.findall(r"(\w+) \(n=(\d+)\)", text))
    assert panels == {f: str(n) for f, n in done.items() if n >= MIN_TRIALS} == {"svm": "7", "knn": "5"}
    assert "No panel for logistic_regression (2 completed trial(s)" in text


def test_markdown_cells_and_tables():
    assert cell(None) == "—" and cell(float("nan")) == "—" and cell(0.96666) == "0.9667" and cell("a|b") == "a\\|b"
    assert table(["x", "y"], [[1, 0.5]]).splitlines() == ["| x | y |", "|---|---|", "| 1 | 0.5000 |"]


def test_public_uri_hides_credentials():
    assert public_uri("http://user:secret@host:5000/x") == "http://host:5000/x"
    assert public_uri("sqlite:////tmp/m.db") == "sqlite:////tmp/m.db"


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = report.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_unreachable_server_is_one_line_within_seconds(tmp_path, quiet_env):
    start = time.monotonic()
    uri = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_cli("--tracking-uri", uri, "--out", str(tmp_path))
    assert time.monotonic() - start < 10
    assert code != 0 and out == "" and err.count("\n") == 1 and "does not answer" in err and uri in err


def test_missing_sqlite_database_is_refused_without_creating_one(tmp_path, quiet_env, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli()
    assert code != 0 and err.count("\n") == 1 and "mlflow.db" in err
    assert not (tmp_path / "mlflow.db").exists()


def test_the_text_choice_is_weighed_beside_the_family_and_the_feature_set():
    trials, hyper = importance_frame()
    trials["text_features"] = ["encoded" if i % 3 else "components" for i in range(len(trials))]
    trials["val_accuracy"] = [0.99 if t == "encoded" else 0.90 for t in trials["text_features"]]
    trials.loc[8, "val_accuracy"] = None  # still the failed one
    importance = param_importance(rebuild_study(trials, hyper))
    assert max(importance.values, key=importance.values.get) == "text_features"
    assert "text_features" in importance.per_family["svm"].values
