"""A big table: validated on one holdout, each configuration scored on row samples first (ASHA over the samples),
and only trials that fitted every row ranked and released."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from search.common import contract as c
from search.common.lookup import search_trials
from search.common.runs_table import load_search
from search.reporting.importance import Importance
from search.reporting.report_md import render
from search.searching.config import parse_args
from search.searching.driver import run_search

pytestmark = pytest.mark.integration
ROWS = 125_000  # a development part of 100,000 rows: one holdout, samples of 1/16 and 1/4 of its 80,000


def big_table(path, rows: int = ROWS, seed: int = 0):
    """Numbers (one with gaps) and a text column that inform a two-class label."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, 4))
    table = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    table.loc[rng.random(rows) < 0.05, "c"] = np.nan
    table["tier"] = rng.choice(["bronze", "silver", "gold"], rows)
    signal = X[:, 0] - 0.7 * X[:, 1] * X[:, 2] + (table["tier"] == "gold") + rng.normal(scale=0.8, size=rows)
    table["label"] = np.where(signal > 0.3, "yes", "no")
    table.to_csv(path, index=False)
    return path


def test_a_big_table_is_sampled_first_and_releases_a_full_fidelity_trial(mlflow_server, ray_session, tmp_path, capsys):
    data = big_table(tmp_path / "big.csv")
    argv = ["--tracking-uri", mlflow_server, "--storage-path", str(tmp_path / "ray_results"), "--experiment",
            "it-fidelity", "--dataset", str(data), "--target", "label", "--models",
            "logistic_regression", "--feature-sets", "basic,squared", "--num-samples", "10",
            "--max-concurrent", "2"]  # fmt: skip
    outcome = run_search(parse_args(argv))
    said = capsys.readouterr().out
    assert "validation: one holdout split of 20%" in said and "scored on 1/16, 1/4 of the rows first" in said
    client = MlflowClient(mlflow_server)
    params = client.get_run(outcome.parent_run_id).data.params
    assert (params[c.CV_FOLDS], params[c.SCHEDULER]) == ("1", "asha")
    trials = search_trials(client, outcome.experiment_id, outcome.search_id)
    fidelities = {t.run_name: t.metrics[c.FIDELITY] for t in trials}
    assert set(fidelities.values()) <= {1 / 16, 1 / 4, 1.0}
    # Mixed fidelities: some configurations went no further than a sample; every completed one fitted every row.
    assert min(fidelities.values()) < 1 and outcome.ranked
    for t in trials:
        full = t.metrics[c.FIDELITY] == 1.0
        assert (t.outcome == c.COMPLETED) == full and (t.metrics[c.FOLDS_DONE] == 1) == full, t.run_name
        assert (c.PREDICT_MS in t.metrics) == full  # the serving cost is the full fit's
    assert all(fidelities[t.run_name] == 1.0 for t in outcome.ranked)
    report = render(load_search(client, "it-fidelity", outcome.search_id), Importance({}, 0, "none"), None, "model",
                    mlflow_server)  # fmt: skip
    sampled = min(fidelities.values())
    assert f"| 1/{round(1 / sampled)} of the rows |" in report

    from release_helpers import run_cli

    code, said, err = run_cli("--tracking-uri", mlflow_server, "--search-id", outcome.search_id, "--no-tag",
                              "--out", str(tmp_path / "releases"))  # fmt: skip
    assert code == 0 and outcome.ranked[0].run_name in said and "registered it-fidelity_best_model v1" in said, err


def test_a_sampled_search_is_reproducible_one_trial_at_a_time(mlflow_server, ray_session, tmp_path):
    """With --max-concurrent 1 and a seed, the sampler proposes the same configurations and ASHA cuts them on the
    same samples: the same trials, fidelities and scores."""
    data = big_table(tmp_path / "mid.csv", rows=32_000, seed=1)  # 25,600 rows: asha; a holdout: one sample, 1/4
    client = MlflowClient(mlflow_server)

    def searched(name: str) -> list[tuple]:
        argv = ["--tracking-uri", mlflow_server, "--storage-path", str(tmp_path / name), "--experiment", name,
                "--dataset", str(data), "--target", "label", "--models", "logistic_regression,knn", "--feature-sets",
                "basic", "--num-samples", "6", "--max-concurrent", "1", "--seed", "5", "--cv-folds", "1"]  # fmt: skip
        outcome = run_search(parse_args(argv))
        trials = sorted(search_trials(client, outcome.experiment_id, outcome.search_id), key=lambda t: t.index)
        return [(t.run_name, t.params, t.metrics[c.FIDELITY], t.metrics[c.VAL_ACCURACY]) for t in trials]

    first = searched("it-fidelity-a")
    assert len(first) == 6 and {f for _, _, f, _ in first} == {0.25, 1.0}
    assert searched("it-fidelity-b") == first
