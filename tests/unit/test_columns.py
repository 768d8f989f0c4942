"""Column roles, one per case a user's table has, and the preparation they lead to inside the Pipeline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trainables.columns import (
    CATEGORICAL,
    CONSTANT,
    DATETIME,
    DROPPED,
    HIGH_CARDINALITY,
    ID,
    NUMERIC,
    Roles,
    infer_roles,
)
from trainables.models import build_pipeline

N = 60
RNG = np.random.default_rng(0)


def table() -> pd.DataFrame:
    """One column of every kind, 60 rows."""
    return pd.DataFrame(
        {
            "row": range(N),  # an exported index
            "customer_id": [f"C{i:04d}" for i in range(N)],  # a distinct text per row
            "age": RNG.normal(40, 10, N).round(1),
            "visits": RNG.integers(0, 9, N),  # whole numbers that repeat: numeric
            "colour": RNG.choice(["red", "green", "blue"], N),
            "member": RNG.choice([True, False], N),
            "city": [f"city {i % 45}" for i in range(N)],  # many values
            "joined": pd.date_range("2020-01-01", periods=N, freq="7D").strftime("%Y-%m-%d"),
            "seen": pd.date_range("2021-03-01", periods=N, freq="h"),
            "country": ["NZ"] * N,
            "notes": [None] * N,
            "gauge": [2.5 if i % 4 else np.nan for i in range(N)],  # one number and gaps: constant
            "ratio": pd.array([i / 7 if i % 5 else None for i in range(N)], dtype="Float64"),  # pandas' nullable floats
        }
    )


@pytest.mark.parametrize(
    "column, role",
    [
        ("row", ID),
        ("customer_id", ID),
        ("age", NUMERIC),
        ("visits", NUMERIC),
        ("colour", CATEGORICAL),
        ("member", CATEGORICAL),
        ("city", HIGH_CARDINALITY),
        ("joined", DATETIME),
        ("seen", DATETIME),
        ("country", CONSTANT),
        ("notes", CONSTANT),
        ("gauge", CONSTANT),
        ("ratio", NUMERIC),
    ],
)
def test_each_kind_of_column_gets_its_role(column, role):
    roles = {col.name: col for col in infer_roles(table()).columns}
    assert roles[column].role == role


def test_overrides_win_and_are_marked():
    roles = {col.name: col for col in infer_roles(table(), categorical=["visits"], drop=["age", "visits"]).columns}
    assert roles["age"].role == DROPPED and roles["visits"].role == DROPPED  # named in both: dropped
    roles = {col.name: col for col in infer_roles(table(), categorical=["visits"]).columns}
    assert (
        roles["visits"].role == CATEGORICAL
        and roles["visits"].overridden
        and "(--categorical)" in roles["visits"].treatment
    )


def test_a_date_column_records_its_one_format_and_the_roles_round_trip():
    roles = infer_roles(table())
    joined = next(col for col in roles.columns if col.name == "joined")
    assert joined.date_format == "%Y-%m-%d"
    assert Roles.from_json(roles.to_json()) == roles
    assert not roles.plain and infer_roles(table()[["age"]]).plain


def test_numbers_that_are_not_an_index_stay_numbers():
    spread = pd.DataFrame({"weight": RNG.normal(size=N), "code": RNG.permutation(N) * 7})
    assert [col.role for col in infer_roles(spread).columns] == [NUMERIC, NUMERIC]


@pytest.mark.parametrize("model", ["logistic_regression", "gradient_boosting", "knn"])
@pytest.mark.parametrize("feature_set", ["basic", "squared"])
def test_the_pipeline_takes_raw_rows_with_gaps_and_unseen_categories(model, feature_set):
    X = table()
    X.loc[::7, "age"] = np.nan
    X.loc[::5, "colour"] = None
    y = pd.Series(np.where(X["age"].fillna(40) > 40, "old", "young"))
    hyper = {
        "logistic_regression": {"C": 1.0, "class_weight": "none"},
        "gradient_boosting": {"learning_rate": 0.1, "max_iter": 10, "max_leaf_nodes": 8, "l2_regularization": 0.0},
        "knn": {"n_neighbors": 3, "weights": "uniform", "p": 2},
    }[model]
    pipeline = build_pipeline(model, feature_set, hyper, seed=0, roles=infer_roles(X)).fit(X, y)
    served = X.head(3).copy()
    served.loc[0, "age"] = np.nan
    served.loc[1, "colour"] = None
    served.loc[2, "colour"] = "ultraviolet"  # never seen in training
    served.loc[2, "joined"] = "not a date"
    assert set(pipeline.predict(served)) <= {"old", "young"}


def test_dates_become_parts_and_a_bad_date_is_missing():
    from trainables.prepare import DateParts

    parts = DateParts({"d": "%Y-%m-%d"}).fit(pd.DataFrame({"d": ["2024-02-29", "2024-03-01"]}))
    out = parts.transform(pd.DataFrame({"d": ["2024-02-29", "oops"]}))
    assert out[0].tolist()[:4] == [2024, 2, 29, 3] and np.isnan(out[1]).all()
    assert list(parts.get_feature_names_out()) == ["d_year", "d_month", "d_day", "d_weekday", "d_days"]


BLOCKED = """
import importlib.abc, pickle, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("trainables", "search", "cluster"):
            raise ImportError("the project is not installed here: " + name)
sys.meta_path.insert(0, Block())
model, rows = pickle.load(sys.stdin.buffer)
print(",".join(model.predict(rows)))
"""


def test_a_released_pipeline_loads_where_the_project_is_not_installed():
    """The release pickles the preparation's own steps by value (search/releasing/registry.py): a server with only
    the pinned packages loads the model."""
    import subprocess
    import sys

    import cloudpickle

    from trainables import prepare

    X = table()
    y = pd.Series(np.where(X["visits"] > 4, "many", "few"))
    hyper = {"C": 1.0, "class_weight": "none"}
    pipeline = build_pipeline("logistic_regression", "basic", hyper, seed=0, roles=infer_roles(X)).fit(X, y)
    cloudpickle.register_pickle_by_value(prepare)
    try:
        payload = cloudpickle.dumps((pipeline, X.head(4)))
    finally:
        cloudpickle.unregister_pickle_by_value(prepare)
    done = subprocess.run([sys.executable, "-c", BLOCKED], input=payload, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-1500:]
    assert done.stdout.decode().strip().split(",") == list(pipeline.predict(X.head(4)))
