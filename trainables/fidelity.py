"""How much of the development part a trial's result stands for: the validation (k folds, or one holdout on a big
table) and, on a big table, the row samples a configuration is scored on before it gets every row.

A result's fidelity is the share of a fold's training rows its fit used: below 1 on a sample rung, 1 on a fold.
Its `folds_done` counts work in folds: the sample's share while sampling (1/64, 1/16, 1/4), then the folds done.
ASHA (search/searching/tuning.py) cuts on that count, so its rungs are the samples, then the folds: successive
halving on rows, then on folds. Only a result of every fold of every row is complete (search/common/trials.py).
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold, ShuffleSplit, StratifiedKFold, StratifiedShuffleSplit

HOLDOUT_ROWS = 100_000  # a development part this large is validated on one holdout split, unless --cv-folds says
HOLDOUT_SHARE = 0.2  # the holdout's share of the development part
DEFAULT_FOLDS = 5
RUNG_FACTOR = 4  # each sample rung has this many times the rows of the one before; ASHA's reduction factor
MIN_SAMPLE_ROWS = 5_000  # the smallest sample worth scoring: below it, a sample says little of the full fit
SAMPLED_ROWS = 25_000  # from this many rows (a fold of 20,000, its quarter 5,000) a search samples rows first
MAX_RUNGS = 3  # at most 1/64, 1/16 and 1/4 of the rows before the full fit
SCORED_ROWS = 20_000  # rows a score is measured on where there are more: a sample's validation rows, a fold's training
# rows (a seeded subset)


def folds_for(rows: int) -> int:
    """The validation a development part of `rows` rows gets when `--cv-folds` is not given: 5 folds, or one
    holdout split (1) from HOLDOUT_ROWS rows, where each fit costs seconds and the validation rows are plenty."""
    return 1 if rows >= HOLDOUT_ROWS else DEFAULT_FOLDS


def scheduler_for(rows: int) -> str:
    """The scheduler a development part of `rows` rows gets when `--scheduler` is not given: ASHA, over row samples
    and folds, from SAMPLED_ROWS rows; below, FIFO (every trial runs every fold, one report: a fold is cheap)."""
    return "asha" if rows >= SAMPLED_ROWS else "fifo"


def splitter(cv_folds: int, regression: bool, seed: int):
    """The seeded splitter of `cv_folds` folds, shuffled (stratified for a classifier); one holdout for 1."""
    if cv_folds == 1:
        holdout = ShuffleSplit if regression else StratifiedShuffleSplit
        return holdout(n_splits=1, test_size=HOLDOUT_SHARE, random_state=seed)
    return (KFold if regression else StratifiedKFold)(n_splits=cv_folds, shuffle=True, random_state=seed)


def train_rows(rows: int, cv_folds: int) -> int:
    """About how many rows a fold trains on, in a development part of `rows` rows."""
    return int(rows * (1 - HOLDOUT_SHARE)) if cv_folds == 1 else rows * (cv_folds - 1) // cv_folds


def rungs(rows: int, cv_folds: int) -> list[float]:
    """The sample rungs of a development part of `rows` rows, smallest first: shares of a fold's training rows
    (powers of 1/RUNG_FACTOR below 1) of at least MIN_SAMPLE_ROWS rows, at most MAX_RUNGS of them; none on a small
    table, where a fold is cheap."""
    trained = train_rows(rows, cv_folds)
    shares = [RUNG_FACTOR**-k for k in range(1, MAX_RUNGS + 1)]
    return sorted(s for s in shares if s * trained >= MIN_SAMPLE_ROWS)


def sample(rows: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A seeded `share` of `rows` (index array), in their order; the same rows for every trial of a seed, and each
    rung's sample holds the smaller rungs' samples."""
    order = np.random.default_rng(seed).permutation(len(rows))
    return np.sort(rows[order[: max(1, int(len(rows) * share))]])


def scored_rows(rows: np.ndarray, seed: int) -> np.ndarray:
    """The rows (sorted indices) a score is measured on: all of them, or a seeded SCORED_ROWS of them on a big table:
    a row sample's validation rows, and a fold's training rows, where predicting each again cost a quarter of the
    fold's time for the report's estimate."""
    return rows if len(rows) <= SCORED_ROWS else sample(rows, SCORED_ROWS / len(rows), seed)
