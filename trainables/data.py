"""Datasets: load one (a scikit-learn bundled set, or a user's CSV or Parquet table as it is), fingerprint it, split
it once."""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from search.common.contract import CLASSIFICATION, REGRESSION, TARGET
from search.common.errors import UsageError
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


def digest_of(X: pd.DataFrame, y: pd.Series) -> str:
    """SHA-256 of the data as CSV text (columns, values, labels, row order): same data, same digest."""
    frame = X.copy()
    frame["__target__"] = y.to_numpy()
    text = frame.to_csv(index=False, float_format="%.17g", lineterminator="\n")
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


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
            numbers = pd.to_numeric(values.dropna(), errors="coerce").notna()
            if numbers.any() and not numbers.all():
                texts = int((~numbers).sum())
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
    """Where a table file is: the path as given (from the working folder), else, for a relative path, inside the
    project's folder (a path the search recorded relative to it, read in another clone or a Ray job's folder)."""
    given = Path(name)
    inside = PROJECT_ROOT / given
    return inside if not given.is_absolute() and not given.exists() and inside.exists() else given


def recorded_path(path: str) -> str:
    """A table's path as the search records it (`table_path`'s inverse): relative to the project's folder when the
    table is inside it (the release finds it in any clone, and a Ray job shipped with `--working-dir .` finds it
    beside the code), absolute otherwise, so a release can reload it from anywhere on this machine."""
    absolute = Path(path).resolve()
    return str(absolute.relative_to(PROJECT_ROOT)) if absolute.is_relative_to(PROJECT_ROOT) else str(absolute)


def _check_overrides(columns: pd.Index, flag: str, names: list[str] | None) -> None:
    unknown = [n for n in names or () if n not in columns]
    if unknown:
        raise UsageError(f"{flag} names {unknown}, not columns of the table: its columns are {list(columns)}")


def recorded_source(name: str) -> str | None:
    """Where dataset `name` (a `--dataset` value) is read from, as MLflow records a dataset's source: a CSV's path;
    None for a bundled set, for which MLflow records the code that built it."""
    return None if name in BUNDLED else name


def load_dataset(
    name: str,
    target: str | None = None,
    categorical: list[str] | None = None,
    drop: list[str] | None = None,
    task: str = AUTO,
) -> Dataset:
    """Load a bundled dataset by name (`iris`, `wine`, `breast_cancer`, `digits`, `diabetes`) or a CSV or Parquet
    file by path, decide its task (`task`: auto, classification or regression; trainables/task.py) and infer its
    columns' roles once (`categorical`, `drop`: the user's overrides)."""
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
    return Dataset(label, X, y, digest_of(X, y), roles, tuple(notes), task, reason)


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
