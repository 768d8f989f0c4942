"""The Tune trainable: one trial is a stratified k-fold cross-validation of one Pipeline on the development part."""

from __future__ import annotations

import json
import socket
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning

from search.common import contract as c
from trainables.columnar import Columns, as_frame, return_freed_memory
from trainables.columns import Roles, infer_roles
from trainables.fidelity import sample, scored_rows, splitter
from trainables.folds import FoldKeeper, FoldProgress, RunFolds, storage_reachable
from trainables.models import build_pipeline
from trainables.prepare import TEXT_CHOICES
from trainables.scoring import accuracy_and_macro_f1, confusion, fold_scores, regression_scores
from trainables.space import hyperparams_of

PAIRS_KEPT = 150  # out-of-fold predictions a regressor's trial keeps (spread over its folds) for its figure


def task_of(config: dict[str, Any]) -> str:
    """The task of a trial config: classification unless it says regression."""
    return config.get(c.TASK) or c.CLASSIFICATION


def pipeline_for(config: dict[str, Any], roles: Roles | int):
    """The unfitted Pipeline a trial config describes, for a table with these column roles (an int: that many clean
    numeric columns)."""
    hp = hyperparams_of(config)
    text = config.get(c.TEXT_FEATURES, TEXT_CHOICES[0])
    return build_pipeline(config[c.MODEL], config[c.FEATURE_SET], hp, config[c.SEED], roles, task_of(config), text)


def cross_validate(
    config: dict[str, Any],
    X: pd.DataFrame,
    y: pd.Series,
    on_fold=None,
    resume: FoldProgress | None = None,
    roles: Roles | None = None,
    rungs: tuple[float, ...] = (),
    on_sample=None,
) -> dict[str, Any]:
    """Cross-validate the config's Pipeline: mean scores and fit time, the first fold's serving cost, the out-of-fold
    confusion matrix (a regressor: a sample of predictions). `on_fold(progress)` after each fold but the last;
    `resume`: folds already done; `rungs`: row samples scored first, each handed to `on_sample`.

    The first fold is fitted as the release fits its model, so its serving cost is the served model's; the others
    fit class codes and, on clean numbers, arrays: the same numbers, without checks that cost more than a cheap fit.
    """
    roles = roles if roles is not None else infer_roles(X)
    regression = task_of(config) == c.REGRESSION
    classes = np.asarray([] if regression else sorted(pd.unique(y).tolist()))
    n_classes = len(classes)
    codes = y.to_numpy(dtype=float) if regression else np.searchsorted(classes, y.to_numpy())
    folds = splitter(config[c.CV_FOLDS], regression, config[c.SEED])
    numbers = [X[name].to_numpy() for name in X.columns] if roles.plain else None
    progress = resume or FoldProgress(n_classes)
    for i, (train_idx, val_idx) in enumerate(folds.split(np.zeros(len(codes)), codes)):
        if i < progress.done:  # kept by an earlier attempt: the split is seeded, so it is the same fold
            continue
        if i == 0 and rungs and on_sample is not None:
            sampled = SampleScorer(config, X, y, codes, classes, roles, train_idx, val_idx)
            for share in rungs:
                on_sample(sampled.score(share))
        pipeline = pipeline_for(config, roles)
        # A fold is its index arrays; its rows are copied as the fit takes them, the validation rows after it.
        rows = (lambda idx: X.iloc[idx]) if i == 0 or numbers is None else (lambda idx: rows_of(numbers, idx))
        X_train, y_train = rows(train_idx), (y.iloc[train_idx] if i == 0 else codes[train_idx])
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(X_train, y_train)
        fit_time = time.perf_counter() - start
        scored = scored_rows(train_idx, config[c.SEED])
        X_train = X_train if len(scored) == len(train_idx) else rows(scored)  # the fold's rows let go before scoring
        X_val = rows(val_idx)
        if i == 0:
            progress.cost = {
                c.PREDICT_MS: time_to_predict(pipeline, X_val),
                c.MODEL_BYTES: float(serialised_size(pipeline)),
            }
        if regression:
            predicted = pipeline.predict(X_val)
            scores = regression_scores(codes[val_idx], predicted)
            train = regression_scores(codes[scored], pipeline.predict(X_train))
            scores[c.TRAIN_RMSE], scores[c.TRAIN_R2] = train[c.VAL_RMSE], train[c.VAL_R2]
            kept = PAIRS_KEPT // folds.n_splits
            sample = zip(codes[val_idx][:kept], predicted[:kept], strict=True)
            pairs = [[float(f"{a:.6g}"), float(f"{p:.6g}")] for a, p in sample]
            progress.add(scores, None, fit_time, pairs)
        else:
            as_codes = (lambda labels: np.searchsorted(classes, np.asarray(labels))) if i == 0 else np.asarray
            scores, predicted = fold_scores(pipeline, X_val, codes[val_idx], n_classes, as_codes)
            train = confusion(codes[scored], as_codes(pipeline.predict(X_train)), n_classes)
            scores[c.TRAIN_ACCURACY], scores[c.TRAIN_F1] = accuracy_and_macro_f1(train)
            progress.add(scores, confusion(codes[val_idx], predicted, n_classes), fit_time)
        if on_fold is not None and i + 1 < folds.n_splits:
            on_fold(progress)
    metrics: dict[str, Any] = progress.running()
    if regression:
        actual, predicted = zip(*progress.pairs, strict=True) if progress.pairs else ((), ())
        metrics[c.PREDICTED_ACTUAL] = json.dumps({"actual": list(actual), "predicted": list(predicted)})
    else:
        metrics[c.CONFUSION_MATRIX] = json.dumps(progress.matrix)
    return metrics


class SampleScorer:
    """Scores the Pipeline fitted on a share of the first fold's training rows (each class kept), on at most
    SCORED_ROWS of its validation rows."""

    def __init__(self, config, X, y, codes, classes, roles, train_idx, val_idx) -> None:
        self.config, self.X, self.y, self.codes, self.classes, self.roles = config, X, y, codes, classes, roles
        self.train_idx, self.seed = train_idx, config[c.SEED]
        self.val_idx = np.sort(scored_rows(val_idx, self.seed))  # sorted, as a sample is
        self.X_val = X.iloc[self.val_idx]

    def score(self, share: float) -> dict[str, Any]:
        """The result of the fit on `share` of the rows (`folds_done`: the share)."""
        rows = sample(self.train_idx, share, self.seed)
        if len(self.classes):  # every class in the sample, so that every score has every class
            _, first = np.unique(self.codes[self.train_idx], return_index=True)
            rows = np.union1d(rows, self.train_idx[first])
        pipeline = pipeline_for(self.config, self.roles)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            pipeline.fit(self.X.iloc[rows], self.y.iloc[rows])
        fit_time = time.perf_counter() - start
        actual = self.codes[self.val_idx]
        if len(self.classes):
            as_codes = lambda labels: np.searchsorted(self.classes, np.asarray(labels))  # noqa: E731
            scores, _ = fold_scores(pipeline, self.X_val, actual, len(self.classes), as_codes)
        else:
            scores = regression_scores(actual, pipeline.predict(self.X_val))
        return {**scores, c.FIT_TIME_S: fit_time, c.FIDELITY: share, c.FOLDS_DONE: share}


def rows_of(columns: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """The fold's `rows` of numeric columns as one float64 matrix, the only copy made of them: column-major, as
    sklearn sees a frame's rows (the same layout gives the same floating-point sums)."""
    out = np.empty((len(rows), len(columns)), dtype=np.float64, order="F")
    for j, values in enumerate(columns):
        if values.dtype == np.float64:
            np.take(values, rows, out=out[:, j])
        else:
            out[:, j] = values[rows]
    return out


def time_to_predict(pipeline, X_val: pd.DataFrame, rows: int = 1000, repeats: int = 5) -> float:
    """CPU milliseconds to predict `rows` rows, the median of `repeats`, on this thread's CPU clock and one BLAS
    thread, so that a machine busy with other trials does not bend it as it bends the wall clock."""
    from threadpoolctl import threadpool_limits

    batch = X_val.iloc[np.resize(np.arange(len(X_val)), rows)]
    timings = []
    with threadpool_limits(limits=1):
        for _ in range(repeats):
            start = time.thread_time()
            pipeline.predict(batch)
            timings.append(1000 * (time.thread_time() - start))
    return float(np.median(timings))


def serialised_size(pipeline) -> int:
    """Bytes of the Pipeline as MLflow's sklearn flavour pickles it (cloudpickle), counted, never held: a k-NN
    model would otherwise hold its training rows twice more."""
    import pickle

    import cloudpickle

    counter = _ByteCounter()
    cloudpickle.dump(pipeline, counter, protocol=pickle.DEFAULT_PROTOCOL)
    return counter.written


class _ByteCounter:
    """A file that keeps only the count of the bytes written to it."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data) -> int:
        size = memoryview(data).nbytes
        self.written += size
        return size


def train_trial(
    config: dict[str, Any], X: pd.DataFrame | Columns, y: pd.Series | Columns, report_folds: bool = False,
    storage: str | None = None, keep_after_s: float | None = None, runs: RunFolds | None = None,
    roles: Roles | None = None, rungs: tuple[float, ...] = (),
) -> None:  # fmt: skip
    """Tune function trainable over the development part (`X`, `y`: frames or `Columns`).

    With `report_folds` every fold (and row sample, `rungs`) is an iteration, so ASHA can stop a hopeless
    configuration early; otherwise the trial reports once. `storage`: a file the driver wrote in Tune's storage;
    where it is visible folds are kept as checkpoints, elsewhere in the trial's run (`runs`; trainables/folds.py).
    The trial's own error ends it with a failed result, not an exception: a seeded trial would raise again, and
    Tune's `max_failures` then counts only attempts lost with their actor or node.
    """
    import ray
    from ray import tune

    started = time.perf_counter()
    X, y = as_frame(X), as_frame(y)  # over the object store's buffers: nothing copied
    keeper = FoldKeeper(report_folds, storage_reachable(storage), keep_after_s, runs)
    resume = keeper.restore()
    node_id = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
    node = {c.NODE: node_id, c.HOSTNAME: socket.gethostname(), c.FOLDS_RESTORED: keeper.restored}

    def on_fold(progress: FoldProgress) -> None:
        if keeper.wants():
            keeper.report({**progress.running(), **node}, progress)
        elif report_folds:
            tune.report({**progress.running(), **node})

    try:
        on_sample = (lambda result: tune.report({**result, **node})) if report_folds else None
        metrics = cross_validate(config, X, y, on_fold, resume, roles, rungs, on_sample)
    except Exception as exc:
        if type(exc).__module__.split(".")[0] == "ray":  # Tune's own signals and a lost connection are Tune's
            raise
        metrics = failed_result(exc)
    finally:  # also when a scheduler stops the trial (Tune ends its thread with SystemExit in `report`)
        return_freed_memory()  # what the folds freed, back to the machine: the next trial runs in another thread
    tune.report({**metrics, **node, c.TRIAL_TIME_S: time.perf_counter() - started})


def failed_result(exc: BaseException) -> dict[str, Any]:
    """The result of a trial whose own code raised: its error's first line and NaN for every score and cost (Tune
    refuses a result without the search's metric); no `folds_done`, so the schedulers and the plateau pass it by."""
    line = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
    return {c.ERROR: f"{type(exc).__name__}: {line}"[:500], **dict.fromkeys((*c.SCORES, *c.COSTS), float("nan"))}
