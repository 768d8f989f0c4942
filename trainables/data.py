"""Datasets: load one (a scikit-learn bundled set, or a user's CSV or Parquet table as it is), fingerprint it, split
it once."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from search.common.contract import CLASSIFICATION, REGRESSION, TARGET
from search.common.errors import UsageError
from trainables.columnar import return_freed_memory
from trainables.columns import Roles, infer_roles
from trainables.task import AUTO, detect_task

BUNDLED = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
    "diabetes": datasets.load_diabetes,  # a number to predict: disease progression a year on
}
PARQUET = (".parquet", ".pq")
PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the project's folder: the code's, and tables recorded inside it


@dataclass(frozen=True)
class Dataset:
    """Features with their raw column names, the target (labels, or numbers for regression), a digest of both."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    digest: str
    roles: Roles | None = None  # None: inferred on first use
    notes: tuple[str, ...] = ()  # said once when the search starts: rows left out, columns read as text
    task: str = CLASSIFICATION
    task_reason: str = ""  # why the task is what it is (trainables/task.py)

    def __post_init__(self) -> None:
        if self.roles is None:
            object.__setattr__(self, "roles", infer_roles(self.X))

    @property
    def classes(self) -> list:
        """Sorted class labels, the order of every confusion matrix (none for regression)."""
        return [] if self.task == REGRESSION else sorted(self.y.unique().tolist())


@dataclass(frozen=True)
class Split:
    """The development part (searched, cross-validated) and the test part (kept for the release)."""

    X_dev: pd.DataFrame
    y_dev: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series
    roles: Roles | None = None  # the dataset's column roles
    task: str = CLASSIFICATION
    stored: Any = None  # the development part's features in Ray's object store (`Columns`' ObjectRef), X_dev let go


def digest_of(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the data, column by column (names, kinds, values, missing cells, labels, row order): same data,
    same digest, whether read from CSV or Parquet, without copying the table (`_canonical` says how)."""
    digest = hashlib.sha256(b"columns-v1\n%d\n" % len(X))
    for name, values in [*X.items(), (TEXT_DIGEST_TARGET, y)]:
        kind, parts = _canonical(values)
        digest.update(f"{name}\0{kind}\n".encode())
        for part in parts:
            digest.update(part)
    return "sha256:" + digest.hexdigest()


def _canonical(values: pd.Series) -> tuple[str, list]:
    """A column as (kind, byte chunks) that equal columns share whatever their dtype: `number` (float64 bytes, one
    NaN for every missing cell), `int` (int64 bytes, for integers float64 cannot hold), `bool` (0, 1; 2 missing)
    or `text` (anything else)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return "text", _text_bytes(values)
    if pd.api.types.is_bool_dtype(dtype):
        present = values.notna().to_numpy()
        flags = np.full(len(values), 2, dtype=np.uint8)
        flags[present] = values[present].to_numpy(dtype=bool)
        return "bool", [flags]
    if not pd.api.types.is_numeric_dtype(dtype):
        return "text", _text_bytes(values)
    if pd.api.types.is_integer_dtype(dtype) and len(values) and not values.isna().any():
        ints = values.to_numpy()
        if ints.max() > 2**53 or ints.min() < -(2**53):
            return "int", [np.ascontiguousarray(ints, dtype="<u8" if ints.dtype.kind == "u" else "<i8")]
    extension = isinstance(dtype, pd.api.extensions.ExtensionDtype)
    floats = values.to_numpy(dtype=np.float64, na_value=np.nan) if extension else values.to_numpy(dtype=np.float64)
    floats = np.ascontiguousarray(floats, dtype="<f8")
    missing = np.isnan(floats)
    return "number", [np.where(missing, np.nan, floats) if missing.any() else floats]


def _text_bytes(values: pd.Series) -> list:
    """A column as text: each value's presence and UTF-8 length, then the values' bytes (Arrow's buffers)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    present = values.notna().to_numpy()
    if pd.api.types.is_string_dtype(values.dtype) and not pd.api.types.is_object_dtype(values.dtype):
        text = pa.chunked_array(values)  # Arrow-backed text: its own buffers
    else:  # numbers or objects read as text, dates, categories: each value's text, the few such columns
        text = pa.chunked_array([pa.array([str(v) if keep else None for v, keep in zip(values, present, strict=True)],
                                          type=pa.large_string())])  # fmt: skip
    text = pc.fill_null(text.combine_chunks().cast(pa.large_string()), "")
    offsets = np.frombuffer(text.buffers()[1], dtype="<i8")[text.offset : text.offset + len(text) + 1]
    data = text.buffers()[2]
    body = memoryview(data)[offsets[0] : offsets[-1]] if data is not None else b""
    return [present.astype(np.uint8), np.diff(offsets).astype("<i8"), body]


TEXT_DIGEST_TARGET = "__target__"


def text_digest_of(X: pd.DataFrame, y: pd.Series, rows: int = 50_000) -> str:
    """The digest searches recorded before `digest_of`: SHA-256 of the data as CSV text (17 significant digits),
    written a slice of rows at a time. Kept to recognise their data (`has_digest`)."""
    digest = hashlib.sha256()
    for start in range(0, max(len(X), 1), rows):
        frame = X.iloc[start : start + rows].copy()
        frame[TEXT_DIGEST_TARGET] = y.iloc[start : start + rows].to_numpy()
        text = frame.to_csv(index=False, header=start == 0, float_format="%.17g", lineterminator="\n")
        digest.update(text.encode())
    return "sha256:" + digest.hexdigest()


def has_digest(data: Dataset, recorded: str) -> bool:
    """Whether `recorded` (a search's `dataset_digest`) is this data's digest, or the CSV text digest a search made
    before `digest_of` existed (computed only then: tens of seconds on a large table)."""
    return recorded == data.digest or recorded == text_digest_of(data.X, data.y)


def _load_bundled(name: str) -> tuple[pd.DataFrame, pd.Series]:
    bunch = BUNDLED[name]()
    columns = list(getattr(bunch, "feature_names", [])) or [f"x{i}" for i in range(bunch.data.shape[1])]
    X = pd.DataFrame(bunch.data, columns=[str(c) for c in columns]).astype("float64")
    names = getattr(bunch, "target_names", None)
    labels = [str(names[t]) for t in bunch.target] if names is not None else bunch.target.astype("float64")
    return X, pd.Series(labels, name=TARGET)


def _read_table(path: Path) -> pd.DataFrame:
    """A CSV (its delimiter sniffed, UTF-8) or Parquet file as a DataFrame; UsageError in one line otherwise."""
    if path.is_dir():
        raise UsageError(f"dataset {path} is a folder, not a table: pass the path of a CSV or Parquet file")
    if not path.is_file():
        raise UsageError(
            f"dataset file {path} does not exist: pass an existing CSV or Parquet path or one of {sorted(BUNDLED)}"
        )
    try:
        if path.suffix.lower() in PARQUET:
            return pd.read_parquet(path)
        with open(path, encoding="utf-8-sig", newline="") as f:
            head = f.read(65536)
        try:
            sep = csv.Sniffer().sniff(head.split("\n", 1)[0], delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
        return pd.read_csv(path, sep=sep, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise UsageError(f"dataset {path} is empty: give a table with a header row and data rows") from None
    except UnicodeDecodeError:
        raise UsageError(f"dataset {path} is not UTF-8 text: save it as UTF-8 (or as Parquet)") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        kind = "Parquet" if path.suffix.lower() in PARQUET else "CSV"
        problem = f"dataset {path} is not readable as {kind} ({exc.__class__.__name__})"
        raise UsageError(f"{problem}: check its format") from None


def _load_table(path: Path, target: str | None, notes: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    if not target:
        raise UsageError(f"dataset {path} is a table: name its label column with --target COLUMN")
    frame = _read_table(path)
    frame.columns = [str(col) for col in frame.columns]
    if target not in frame.columns:
        raise UsageError(f"target column {target!r} is not in {path}: its columns are {list(frame.columns)}")
    if frame.empty:
        raise UsageError(f"dataset {path} has a header but no rows: give a table with data rows")
    unlabelled = int(frame[target].isna().sum())
    if unlabelled:
        frame = frame.dropna(subset=[target])
        notes.append(f"{unlabelled} of {unlabelled + len(frame)} rows of {path.name} have no {target!r}: left out")
    for col in frame.columns.drop(target):
        values = frame[col]
        if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            counts = values.value_counts()  # each distinct value parsed once, not each cell
            numbers = pd.to_numeric(pd.Series(counts.index, dtype=object), errors="coerce").notna().to_numpy()
            if numbers.any() and not numbers.all():
                texts = int(counts[~numbers].sum())
                notes.append(f"column {col!r} mixes numbers and text ({texts} text values): read as text")
    X = frame.drop(columns=[target])
    if X.shape[1] == 0 or len(frame) == 0:
        raise UsageError(f"dataset {path} has no feature columns or no labelled rows besides {target!r}")
    return X.reset_index(drop=True), frame[target].reset_index(drop=True)


def _as_task(y: pd.Series, task: str) -> pd.Series:
    """The target as the task takes it: floats to predict; labels as text, or as integers for class codes."""
    if task == REGRESSION:
        return y.astype("float64").rename(TARGET)
    if pd.api.types.is_float_dtype(y) and (y == y.round()).all():
        y = y.astype("int64")  # integer class codes read as floats because of a gap in the column
    y = y.astype(str) if not pd.api.types.is_integer_dtype(y) else y
    return y.rename(TARGET)


def table_path(name: str) -> Path:
    """Where a table file is: the path as given, else, for a relative path, inside the project's folder."""
    given = Path(name)
    inside = PROJECT_ROOT / given
    return inside if not given.is_absolute() and not given.exists() and inside.exists() else given


def recorded_path(path: str) -> str:
    """A table's path as the search records it (`table_path`'s inverse): relative to the project's folder when the
    table is inside it (any clone or Ray job's folder finds it), absolute otherwise."""
    absolute = Path(path).resolve()
    return str(absolute.relative_to(PROJECT_ROOT)) if absolute.is_relative_to(PROJECT_ROOT) else str(absolute)


def _check_overrides(columns: pd.Index, flag: str, names: list[str] | None) -> None:
    unknown = [n for n in names or () if n not in columns]
    if unknown:
        raise UsageError(f"{flag} names {unknown}, not columns of the table: its columns are {list(columns)}")


def recorded_source(name: str) -> str | None:
    """Where dataset `name` is read from, as MLflow records a dataset's source: a file's path, None when bundled."""
    return None if name in BUNDLED else name


def load_dataset(
    name: str,
    target: str | None = None,
    categorical: list[str] | None = None,
    drop: list[str] | None = None,
    task: str = AUTO,
) -> Dataset:
    """Load a bundled dataset by name or a CSV or Parquet file by path, decide its task and infer its columns' roles
    once (`categorical`, `drop`: the user's overrides)."""
    notes: list[str] = []
    if name in BUNDLED:
        if target:
            raise UsageError(f"--target applies to a table file; {name} has its own labels: drop --target {target}")
        X, y = _load_bundled(name)
        label = name
    elif Path(name).suffix.lower() in (".csv", *PARQUET) or Path(name).exists():
        X, y = _load_table(table_path(name), target, notes)
        label = Path(name).stem
    else:
        raise UsageError(f"unknown dataset {name!r}: use one of {sorted(BUNDLED)} or a path to a CSV or Parquet file")
    _check_overrides(X.columns, "--categorical", categorical)
    _check_overrides(X.columns, "--drop", drop)
    task, reason = detect_task(y, task)
    y = _as_task(y, task)
    counts = y.value_counts()
    if len(counts) < 2:
        what = "a single class" if task == CLASSIFICATION else "a single target value"
        need = "a classifier needs two or more" if task == CLASSIFICATION else "there is nothing to predict"
        raise UsageError(f"dataset {name} has {what} ({counts.index[0]!r}): {need}")
    roles = infer_roles(X, categorical, drop)
    if not roles.kept:
        raise UsageError(
            f"dataset {name} has no usable feature column: each is an ID, constant or dropped "
            f"({', '.join(f'{col.name}: {col.role}' for col in roles.columns)}); keep one (--categorical, fewer --drop)"
        )
    data = Dataset(label, X, y, digest_of(X, y), roles, tuple(notes), task, reason)
    return_freed_memory()  # a large read leaves about one more copy with the allocators
    return data


def split_dataset(data: Dataset, test_size: float, seed: int) -> Split:
    """Split once, seeded, into the development part and the held-out test part: stratified by class for a
    classifier, shuffled for a regressor."""
    stratify = data.y if data.task == CLASSIFICATION else None
    smallest = int(data.y.value_counts().min()) if stratify is not None else len(data.y)
    if smallest < 2:
        raise UsageError(f"a class of {data.name} has only {smallest} row: every class needs at least 2 to be split")
    X_dev, X_test, y_dev, y_test = train_test_split(
        data.X, data.y, test_size=test_size, stratify=stratify, random_state=seed
    )
    return Split(X_dev, y_dev, X_test, y_test, data.roles, data.task)
