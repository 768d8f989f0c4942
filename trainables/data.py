"""Datasets: load one (a scikit-learn bundled set or a user's CSV), fingerprint it, split it once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from search.common.contract import TARGET
from search.common.errors import UsageError

BUNDLED = {
    "iris": datasets.load_iris,
    "wine": datasets.load_wine,
    "breast_cancer": datasets.load_breast_cancer,
    "digits": datasets.load_digits,
}


@dataclass(frozen=True)
class Dataset:
    """Features with their raw column names, labels, and a digest of both."""

    name: str
    X: pd.DataFrame
    y: pd.Series
    digest: str

    @property
    def classes(self) -> list:
        """Sorted class labels, the order of every confusion matrix."""
        return sorted(self.y.unique().tolist())


@dataclass(frozen=True)
class Split:
    """The development part (searched, cross-validated) and the test part (kept for the release)."""

    X_dev: pd.DataFrame
    y_dev: pd.Series
    X_test: pd.DataFrame
    y_test: pd.Series


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
    labels = [str(names[t]) for t in bunch.target] if names is not None else bunch.target
    return X, pd.Series(labels, name=TARGET)


def _load_csv(path: Path, target: str | None) -> tuple[pd.DataFrame, pd.Series]:
    if path.is_dir():
        raise UsageError(f"dataset {path} is a folder, not a CSV: pass the path of a CSV file")
    if not path.is_file():
        raise UsageError(f"dataset file {path} does not exist: pass an existing CSV path or one of {sorted(BUNDLED)}")
    if not target:
        raise UsageError(f"dataset {path} is a CSV: name its label column with --target COLUMN")
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise UsageError(f"dataset {path} is empty: give a CSV with a header row and data rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"dataset {path} is not readable as CSV ({exc.__class__.__name__}): check its format"
        ) from None
    if target not in frame.columns:
        raise UsageError(f"target column {target!r} is not in {path}: its columns are {list(frame.columns)}")
    frame = frame.dropna(subset=[target])
    X = frame.drop(columns=[target])
    non_numeric = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if non_numeric:
        raise UsageError(f"feature columns {non_numeric} of {path} are not numeric: encode them or drop them")
    if X.shape[1] == 0 or len(frame) == 0:
        raise UsageError(f"dataset {path} has no feature columns or no rows besides {target!r}")
    if X.isna().any().any():
        raise UsageError(f"dataset {path} has missing feature values: fill or drop them first")
    y = frame[target]
    y = y.astype(str) if not pd.api.types.is_integer_dtype(y) else y
    return X.astype("float64").reset_index(drop=True), y.rename(TARGET).reset_index(drop=True)


def recorded_source(name: str) -> str | None:
    """Where dataset `name` (a `--dataset` value) is read from, as MLflow records a dataset's source: a CSV's path;
    None for a bundled set, for which MLflow records the code that built it."""
    return None if name in BUNDLED else name


def load_dataset(name: str, target: str | None = None) -> Dataset:
    """Load a bundled dataset by name (`iris`, `wine`, `breast_cancer`, `digits`) or a CSV by path."""
    if name in BUNDLED:
        if target:
            raise UsageError(f"--target applies to a CSV; {name} has its own labels: drop --target {target}")
        X, y = _load_bundled(name)
        label = name
    elif name.endswith(".csv") or Path(name).exists():
        X, y = _load_csv(Path(name), target)
        label = Path(name).stem
    else:
        raise UsageError(f"unknown dataset {name!r}: use one of {sorted(BUNDLED)} or a path to a CSV file")
    counts = y.value_counts()
    if len(counts) < 2:
        raise UsageError(f"dataset {name} has a single class ({counts.index[0]!r}): a classifier needs two or more")
    return Dataset(name=label, X=X, y=y, digest=digest_of(X, y))


def split_dataset(data: Dataset, test_size: float, seed: int) -> Split:
    """Split once, stratified and seeded, into the development part and the held-out test part."""
    smallest = int(data.y.value_counts().min())
    if smallest < 2:
        raise UsageError(f"a class of {data.name} has only {smallest} row: every class needs at least 2 to be split")
    X_dev, X_test, y_dev, y_test = train_test_split(
        data.X, data.y, test_size=test_size, stratify=data.y, random_state=seed
    )
    return Split(X_dev, y_dev, X_test, y_test)
