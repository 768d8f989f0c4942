"""Row fidelity: which tables are validated on a holdout and sampled first, and what a trial reports on a sample."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score
from sklearn.model_selection import StratifiedShuffleSplit

from search.common import contract as c
from trainables import fidelity
from trainables.trainable import cross_validate, pipeline_for

LR = {"model": "logistic_regression", "feature_set": "basic", "seed": 3,
      "logistic_regression": {"C": 1.0, "class_weight": "none"}}  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "folds", "scheduler", "shares"),
    [
        (150, 5, "fifo", []),
        (24_999, 5, "fifo", []),
        (25_000, 5, "asha", [1 / 4]),
        (99_999, 5, "asha", [1 / 4]),
        (100_000, 1, "asha", [1 / 16, 1 / 4]),
        (800_000, 1, "asha", [1 / 64, 1 / 16, 1 / 4]),
    ],
)
def test_big_tables_get_a_holdout_and_row_samples(rows, folds, scheduler, shares):
    assert fidelity.folds_for(rows) == folds
    assert fidelity.scheduler_for(rows) == scheduler
    assert fidelity.rungs(rows, folds) == shares
    assert all(share * fidelity.train_rows(rows, folds) >= fidelity.MIN_SAMPLE_ROWS for share in shares)


def test_each_sample_holds_the_smaller_ones_and_is_the_same_for_a_seed():
    rows = np.arange(0, 40_000, 2)
    small, large = fidelity.sample(rows, 1 / 16, 7), fidelity.sample(rows, 1 / 4, 7)
    assert len(small) == len(rows) // 16 and len(large) == len(rows) // 4
    assert np.isin(small, large).all() and np.isin(large, rows).all()
    assert np.array_equal(small, fidelity.sample(rows, 1 / 16, 7))
    assert not np.array_equal(small, fidelity.sample(rows, 1 / 16, 8))


def test_training_scores_are_measured_on_at_most_scored_rows_seeded():
    few, many = np.arange(fidelity.SCORED_ROWS), np.arange(3 * fidelity.SCORED_ROWS) * 2
    assert fidelity.scored_rows(few, 1) is few
    picked = fidelity.scored_rows(many, 1)
    assert len(picked) == pytest.approx(fidelity.SCORED_ROWS, abs=1) and np.isin(picked, many).all()
    assert np.array_equal(picked, fidelity.scored_rows(many, 1))
    assert not np.array_equal(picked, fidelity.scored_rows(many, 2))


def table(rows: int, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """Two informative numbers and a label with a class of 3 rows in the whole table."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    y = pd.Series(np.where(X["a"] + 0.5 * rng.normal(size=rows) > 0, "yes", "no"), name="label")
    y.iloc[[5, 500, 5000]] = "rare"
    return X, y


def test_a_trial_reports_each_sample_then_its_full_fit():
    X, y = table(30_000)
    config = {**LR, c.CV_FOLDS: 1}
    samples: list[dict] = []
    result = cross_validate(config, X, y, rungs=(1 / 16, 1 / 4), on_sample=samples.append)
    assert [s[c.FIDELITY] for s in samples] == [s[c.FOLDS_DONE] for s in samples] == [1 / 16, 1 / 4]
    assert result[c.FIDELITY] == 1.0 and result[c.FOLDS_DONE] == 1
    # The full fit is one stratified holdout of 20%, scored as sklearn scores it.
    train, val = next(StratifiedShuffleSplit(1, test_size=0.2, random_state=3).split(X, y))
    full = pipeline_for(config, X.shape[1]).fit(X.iloc[train], y.iloc[train])
    assert result[c.VAL_ACCURACY] == pytest.approx(accuracy_score(y.iloc[val], full.predict(X.iloc[val])), abs=1e-12)
    # Its training score is measured on 20,000 of the 24,000 training rows: an estimate of the whole's.
    whole = accuracy_score(y.iloc[train], full.predict(X.iloc[train]))
    assert result[c.TRAIN_ACCURACY] == pytest.approx(whole, abs=0.01)
    # A sample's fit sees every class, the rare one included, and scores on the holdout's rows.
    assert all(0.5 < s[c.VAL_ACCURACY] <= 1 and np.isfinite(s[c.VAL_LOG_LOSS]) for s in samples)


def test_a_resumed_trial_skips_its_samples():
    from trainables.folds import FoldProgress

    X, y = table(6_000)
    config = {**LR, c.CV_FOLDS: 2}
    kept: list = []
    cross_validate(config, X, y, on_fold=lambda p: kept.append(p.to_json()))
    samples: list[dict] = []
    resume = FoldProgress.from_json(kept[0])
    cross_validate(config, X, y, resume=resume, rungs=(1 / 4,), on_sample=samples.append)
    assert samples == []
