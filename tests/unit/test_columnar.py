"""Big tables: the development part reaches trials without a copy, folds copy only their rows, the digest is
columnar and still recognises the CSV text digest of earlier searches, and MLflow's dataset record is MLflow's own."""

import gc
import pickle
import warnings
import weakref

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from search.common import mlflow_records as mr
from trainables.columnar import Columns, as_frame, no_rows
from trainables.data import digest_of, has_digest, load_dataset, split_dataset, text_digest_of
from trainables.trainable import cross_validate, rows_of


def table(n: int = 90) -> pd.DataFrame:
    """Numbers with gaps, text with gaps, integers, booleans: a table as people have it."""
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=n)
    numbers[::7] = np.nan
    return pd.DataFrame(
        {
            "size": numbers,
            "weight": rng.normal(size=n),
            "colour": pd.Series(rng.choice(["red", "blue", "green"], n), dtype="str").where(np.arange(n) % 5 != 0),
            "count": rng.integers(0, 9, n),
            "label": pd.Series(rng.choice(["a", "b"], n), dtype="str"),
        }
    )


def shipped(value):
    """`value` through pickle protocol 5 as Ray's object store keeps it (out-of-band buffers, read-only), and the
    buffers it was read from."""
    buffers = []
    blob = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    raw = [memoryview(b.raw()).toreadonly() for b in buffers]
    return pickle.loads(blob, buffers=raw), [np.asarray(r) for r in raw], len(blob)


def test_the_development_part_reaches_a_trial_without_a_copy():
    from search.searching.tuning import trial_data

    data = load_dataset_from(table())
    split = split_dataset(data, 0.2, 0)
    sent = trial_data(split)
    assert all(isinstance(v, Columns) for v in sent.values())
    got, buffers, in_band = shipped(sent["X"])
    X = as_frame(got)
    pd.testing.assert_frame_equal(X, split.X_dev, check_exact=True)  # dtypes, index, missing cells
    for name in ("size", "weight", "count"):  # the trial's numbers are the object store's bytes
        assert any(np.shares_memory(X[name].to_numpy(), b) for b in buffers), name
    text = pa.chunked_array(X["colour"]).chunk(0).buffers()[2]
    assert any(np.shares_memory(np.frombuffer(text, dtype=np.uint8), b) for b in buffers)
    assert in_band < 10_000  # no column travels inside the pickle stream, where every reader copies it
    y = as_frame(shipped(sent["y"])[0])
    pd.testing.assert_series_equal(y, split.y_dev, check_exact=True)


def test_a_trial_on_the_shipped_part_scores_as_on_the_frame():
    data = load_dataset_from(table(200))
    split = split_dataset(data, 0.2, 0)
    X, y = as_frame(shipped(Columns.of(split.X_dev))[0]), as_frame(shipped(Columns.of(split.y_dev))[0])
    config = {"model": "logistic_regression", "feature_set": "squared", "seed": 0, "cv_folds": 3,
              "logistic_regression": {"C": 1.0, "class_weight": "none"}}  # fmt: skip
    a = cross_validate(config, split.X_dev, split.y_dev, roles=split.roles)
    b = cross_validate(config, X, y, roles=split.roles)
    assert {k: v for k, v in a.items() if k not in ("fit_time_s", "predict_ms")} == {
        k: v for k, v in b.items() if k not in ("fit_time_s", "predict_ms")
    }


def test_a_fold_of_numbers_copies_its_rows_only_column_major():
    data = load_dataset("wine")
    columns = [data.X[name].to_numpy() for name in data.X.columns]
    rows = np.array([5, 0, 17, 3])
    fold = rows_of(columns, rows)
    assert fold.flags.f_contiguous and fold.shape == (4, data.X.shape[1])
    assert np.array_equal(fold, data.X.to_numpy(dtype=float)[rows])
    assert np.array_equal(rows_of([np.arange(6)], np.array([4, 1])), [[4.0], [1.0]])  # integers as floats


def load_dataset_from(frame: pd.DataFrame, tmp=None):
    """The table as `load_dataset` reads a Parquet file of it."""
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp())
    frame.to_parquet(folder / "t.parquet")
    return load_dataset(str(folder / "t.parquet"), "label")


def old_text_digest(X: pd.DataFrame, y: pd.Series) -> str:
    """The digest searches recorded before the columnar one, as it was written then."""
    import hashlib

    frame = X.copy()
    frame["__target__"] = y.to_numpy()
    text = frame.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_the_digest_reads_values_not_dtypes_and_sees_every_cell():
    frame = table()
    X, y = frame.drop(columns="label"), frame["label"]
    digest = digest_of(X, y)
    same = X.assign(count=X["count"].astype(float), colour=X["colour"].astype(object))
    assert digest_of(same, y) == digest  # integers read as floats, text as objects: the same data
    assert digest_of(X.assign(size=X["size"].fillna(0.0)), y) != digest  # a gap filled
    assert digest_of(X.assign(colour=X["colour"].fillna("")), y) != digest  # empty text is not a gap
    changed = X.copy()
    changed.iloc[3, 1] = np.nextafter(changed.iloc[3, 1], 1)  # one bit of one value
    assert digest_of(changed, y) != digest
    assert digest_of(X[["weight", "size", "colour", "count"]], y) != digest  # column order
    assert digest_of(X.iloc[::-1], y.iloc[::-1]) != digest  # row order


def test_the_earlier_text_digest_is_still_recognised():
    data = load_dataset("iris")
    earlier = old_text_digest(data.X, data.y)
    assert text_digest_of(data.X, data.y, rows=7) == earlier  # written a slice at a time, the same text
    assert earlier != data.digest and has_digest(data, earlier) and has_digest(data, data.digest)
    assert not has_digest(data, old_text_digest(data.X.iloc[1:], data.y.iloc[1:]))


@pytest.mark.parametrize("rows", [5, 400])
def test_the_dataset_record_is_mlflows_own(rows):
    import mlflow.data

    n = rows // 5
    X = pd.DataFrame({
        "text": pd.Series(["a", None, "b", "c", "d"] * n, dtype="str"),
        "full": pd.Series(list("abcde") * n, dtype="str"),
        "mixed": pd.Series([1, "x", 2.5, None, "y"] * n, dtype=object),
        "flag": [True, False, True, True, False] * n,
        "flag_gaps": pd.Series([True, None, False, True, False] * n, dtype=object),
        "whole": np.arange(5 * n),
        "gaps": [1.0, np.nan, 2.0, 3.0, 4.0] * n,
        "when": pd.date_range("2020-01-01", periods=5 * n),
        "kind": pd.Categorical(["u", "v", "u", "u", "v"] * n),
        "nullable": pd.array([1, None, 3, 4, 5] * n, dtype="Int64"),
    })  # fmt: skip
    y = pd.Series(["p", "q", "p", "p", "q"] * n, name="target")
    frame = X.copy()
    frame["target"] = y.to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mlflow.data.from_pandas(frame, source="/data/t.csv", targets="target", name="t-dev").to_dict()
    ours = mr.data_part(X, y, "t-dev", "training", "/data/t.csv").dataset.dataset
    assert {k: getattr(ours, k) for k in theirs if k != "name"} == {k: v for k, v in theirs.items() if k != "name"}
    with warnings.catch_warnings():  # the test part as the release's evaluation records it
        warnings.simplefilter("ignore")
        evaluated = mr.evaluation_dataset(X, y, "target", "t-test")
        expected = mlflow.data.from_pandas(frame, targets="target", name="t-test").to_dict()
        assert evaluated.to_dict() == expected and evaluated.df.equals(frame)


def test_a_frame_without_its_rows_lets_their_memory_go():
    """The driver's emptied parts keep their columns and dtypes and none of the rows' memory: a view cut to no rows
    (`iloc[:0]`) keeps the whole block alive (on a million rows, a copy of the table during the whole search)."""
    values = np.ones((1000, 3))
    frame = pd.DataFrame(values, columns=["a", "b", "c"], copy=False)
    alive = weakref.ref(values)
    empty = no_rows(frame)
    del frame, values
    gc.collect()
    assert list(empty.columns) == ["a", "b", "c"] and len(empty) == 0 and set(empty.dtypes) == {np.dtype(float)}
    assert alive() is None


def test_a_big_matrix_is_scaled_a_chunk_at_a_time():
    """The scaler of a big prepared matrix costs a chunk's temporaries, not two matrices the size of the whole, and
    scales as StandardScaler does; a small matrix is StandardScaler's, to the last bit."""
    import tracemalloc

    from sklearn.preprocessing import StandardScaler

    from trainables.prepare import SCALED_CHUNK, ChunkedScaler

    rng = np.random.default_rng(0)
    small = rng.normal(3, 2, size=(500, 4))
    assert np.array_equal(ChunkedScaler().fit(small).scale_, StandardScaler().fit(small).scale_)
    big = rng.normal(3, 2, size=(8 * SCALED_CHUNK + 17, 10))
    big[::7, 3] = np.nan  # gaps are left out of the statistics, as StandardScaler leaves them
    tracemalloc.start()
    try:
        ours = ChunkedScaler().fit(big)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    theirs = StandardScaler().fit(big)
    assert peak < big.nbytes / 2
    np.testing.assert_allclose(ours.mean_, theirs.mean_, rtol=1e-12)
    np.testing.assert_allclose(ours.scale_, theirs.scale_, rtol=1e-12)
    assert ours.n_samples_seen_.tolist() == theirs.n_samples_seen_.tolist()
