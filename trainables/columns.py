"""Column roles: what each column of a table is, inferred once from the whole table, with the user's overrides
(`--categorical`, `--drop`), which win. A role decides what the Pipeline does with a column (trainables/prepare.py;
`WHAT_IS_DONE` says it in words)."""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import asdict, dataclass

import pandas as pd

NUMERIC, CATEGORICAL, HIGH_CARDINALITY, DATETIME = "numeric", "categorical", "high_cardinality", "datetime"
ID, CONSTANT, DROPPED = "id", "constant", "dropped"
KEPT_ROLES = (NUMERIC, CATEGORICAL, HIGH_CARDINALITY, DATETIME)
MAX_ONE_HOT = 30  # distinct values up to which a text column is one-hot encoded; above, target-encoded
DATE_SHARE = 0.9  # share of a text column's values that must parse as dates in its one format
ID_NAME = re.compile(r"(^|[^a-z])(id|uuid|guid|key|index)$|^unnamed: ?\d+$", re.IGNORECASE)

WHAT_IS_DONE = {
    NUMERIC: "median imputation, was-missing indicator",
    CATEGORICAL: "one-hot (rare, unseen grouped); native for gradient boosting",
    HIGH_CARDINALITY: "target encoding, cross-fitted; components of its character n-grams",
    DATETIME: "date parts: year, month, day, weekday, days since 1970",
    ID: "dropped: a distinct value per row",
    CONSTANT: "dropped: a single value or none",
    DROPPED: "dropped: --drop",
}


@dataclass(frozen=True)
class Column:
    """One column: its name, role, the date format it is parsed with (datetime), and how many values it lacks."""

    name: str
    role: str
    missing: int = 0
    date_format: str | None = None
    overridden: bool = False

    @property
    def treatment(self) -> str:
        """What the Pipeline does with the column, in a few words."""
        return WHAT_IS_DONE[self.role] + (" (--categorical)" if self.overridden and self.role != DROPPED else "")


@dataclass(frozen=True)
class Roles:
    """The roles of a table's feature columns, in the table's order."""

    columns: tuple[Column, ...]

    def names(self, *roles: str) -> list[str]:
        """The columns whose role is one of `roles`, in the table's order."""
        return [col.name for col in self.columns if col.role in roles]

    @property
    def kept(self) -> list[str]:
        """The columns the models see (after preparation)."""
        return self.names(*KEPT_ROLES)

    @property
    def plain(self) -> bool:
        """True for a table of numbers only, none missing and none dropped: it needs no preparation step."""
        return all(col.role == NUMERIC and not col.missing for col in self.columns)

    @property
    def text(self) -> bool:
        """True for a table with many-valued text, whose treatment the search chooses (trainables/space.py)."""
        return bool(self.names(HIGH_CARDINALITY))

    @property
    def missing(self) -> bool:
        return any(col.missing for col in self.columns if col.role in KEPT_ROLES)

    def table(self) -> str:
        """The roles as a short text table: column, role, missing values, what is done with it."""
        width = max([len("column"), *(len(col.name) for col in self.columns)])
        lines = [f"{'column':<{width}}  {'role':<16}  {'missing':>7}  what is done"]
        for col in self.columns:
            lines.append(f"{col.name:<{width}}  {col.role:<16}  {col.missing:>7}  {col.treatment}")
        return "\n".join(lines)

    def to_json(self) -> str:
        """The roles as JSON (a list of columns), as the search records them."""
        return json.dumps([asdict(col) for col in self.columns])

    @classmethod
    def from_json(cls, text: str) -> Roles:
        """Roles recorded by `to_json`."""
        return cls(tuple(Column(**col) for col in json.loads(text)))


def date_format_of(values: pd.Series) -> str | None:
    """The one format most of a text column's values parse with as dates, or None when it is not a date column."""
    sample = values.dropna().astype(str)
    if sample.empty or not sample.str.contains(r"[-/:.]|[A-Za-z]{3}").all():
        return None
    from pandas.tseries.api import guess_datetime_format

    fmt = guess_datetime_format(sample.iloc[0])
    if fmt is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample.head(1000), format=fmt, errors="coerce")
    return fmt if parsed.notna().mean() >= DATE_SHARE else None


def _infer(name: str, values: pd.Series) -> Column:
    missing = int(values.isna().sum())
    if pd.api.types.is_float_dtype(values):  # constant or a number: min and max say which, without hashing each value
        varies = missing < len(values) and values.min() < values.max()
        return Column(name, NUMERIC if varies else CONSTANT, missing)
    present = values.dropna()
    distinct = present.nunique()
    if distinct <= 1:
        return Column(name, CONSTANT, missing)
    if pd.api.types.is_datetime64_any_dtype(values):
        return Column(name, DATETIME, missing)
    if pd.api.types.is_bool_dtype(values):
        return Column(name, CATEGORICAL, missing)
    every_row = distinct == len(values) and len(values) > MAX_ONE_HOT
    if pd.api.types.is_numeric_dtype(values):
        integers = pd.api.types.is_integer_dtype(values)
        consecutive = integers and int(present.max()) - int(present.min()) + 1 == len(values)
        if every_row and integers and (consecutive or ID_NAME.search(name)):
            return Column(name, ID, missing)
        return Column(name, NUMERIC, missing)
    if (fmt := date_format_of(values)) is not None:
        return Column(name, DATETIME, missing, date_format=fmt)
    if every_row or (distinct > 0.5 * len(present) and ID_NAME.search(name)):
        return Column(name, ID, missing)
    return Column(name, CATEGORICAL if distinct <= MAX_ONE_HOT else HIGH_CARDINALITY, missing)


def infer_roles(X: pd.DataFrame, categorical: list[str] | None = None, drop: list[str] | None = None) -> Roles:
    """Each column's role, inferred from the whole table; `categorical` and `drop` name columns whose role the user
    sets (a column named in both is dropped)."""
    categorical, drop = set(categorical or ()), set(drop or ())
    columns = []
    for name in X.columns:
        values = X[name]
        if name in drop:
            columns.append(Column(name, DROPPED, int(values.isna().sum()), overridden=True))
        elif name in categorical:
            distinct = values.nunique()
            role = CATEGORICAL if distinct <= MAX_ONE_HOT else HIGH_CARDINALITY
            columns.append(Column(name, role, int(values.isna().sum()), overridden=True))
        else:
            columns.append(_infer(str(name), values))
    return Roles(tuple(columns))
