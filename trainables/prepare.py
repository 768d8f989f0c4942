"""The preparation step of a trial's Pipeline: raw columns in, numbers out, by the roles of trainables/columns.py.

Every step is fitted on the Pipeline's own rows, so nothing of the validation or test rows leaks in. The feature set
(trainables/features.py) applies to the numeric columns; categories are encoded beside them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, OrdinalEncoder, StandardScaler, TargetEncoder

from search.common.contract import REGRESSION
from trainables.columns import CATEGORICAL, DATETIME, HIGH_CARDINALITY, MAX_ONE_HOT, NUMERIC, Roles

MIN_FREQUENCY = 5  # rows a category needs in the fitted rows to get its own one-hot column
MISSING = "(missing)"
PARTS = ("year", "month", "day", "weekday")
SCALED_CHUNK = 65_536  # rows a big matrix's scaler reads at a time
TEXT_COMPONENTS = 30  # components kept of a many-valued text column's character n-grams
# What many-valued text becomes, a searched choice: target encoding and n-gram components (the first, the default), or
# the encoding alone, where the components are noise for a small table's target.
TEXT_CHOICES = ("components", "encoded")


def median_or_zero(values: np.ndarray) -> float:
    """The median of a column's present values, 0 for none: `SimpleImputer(strategy="median")`'s numbers, one column
    at a time instead of a masked, sorted copy of the whole block."""
    return float(np.median(values)) if len(values) else 0.0


def as_text(X: pd.DataFrame) -> np.ndarray:
    """Columns as text (an object array), missing values kept as NaN: categories read alike from any dtype."""
    frame = pd.DataFrame(X)
    return frame.astype(str).where(frame.notna(), np.nan).to_numpy(dtype=object)


def as_unicode(X) -> np.ndarray:
    """Text without gaps as numpy's unicode strings, which scikit-learn's encoders handle with numpy rather than
    object by object in Python; the categories, their order and the encoding are the same."""
    return np.asarray(X, dtype=str)


class ChunkedScaler(StandardScaler):
    """StandardScaler whose fit reads a matrix of more than SCALED_CHUNK rows a chunk at a time (its own
    `partial_fit`): its mean and variance then cost a chunk's temporaries instead of two matrices the size of the
    whole (a NaN count and the centred copy). A smaller matrix is fitted by StandardScaler itself, to the last bit."""

    def fit(self, X, y=None, sample_weight=None):
        if sample_weight is not None or not isinstance(X, np.ndarray) or X.ndim != 2 or len(X) <= SCALED_CHUNK:
            return super().fit(X, y, sample_weight)
        self._reset()
        for start in range(0, len(X), SCALED_CHUNK):
            self.partial_fit(X[start : start + SCALED_CHUNK])
        return self


class DateParts(TransformerMixin, BaseEstimator):
    """Dates (text in one recorded format each, or datetimes) to year, month, day, weekday, days since 1970, and
    the hour where the fitted rows' times vary; a value that does not parse is missing."""

    def __init__(self, formats: dict[str, str | None] | None = None):
        self.formats = formats

    def _parse(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = pd.DataFrame(X)
        formats = self.formats or {}
        parsed = {}
        for name in frame.columns:
            values = frame[name]
            if not pd.api.types.is_datetime64_any_dtype(values):
                values = pd.to_datetime(values, format=formats.get(name), errors="coerce")
            parsed[name] = values.dt.tz_localize(None) if getattr(values.dt, "tz", None) else values
        return pd.DataFrame(parsed, index=frame.index)

    def fit(self, X, y=None):
        parsed = self._parse(X)
        self.columns_ = list(parsed.columns)
        self.hours_ = [name for name in parsed.columns if parsed[name].dt.hour.fillna(0).nunique() > 1]
        return self

    def transform(self, X) -> np.ndarray:
        parsed = self._parse(X)
        out = []
        for name in self.columns_:
            when = parsed[name].dt
            out += [getattr(when, part).astype("float64") for part in PARTS]
            days = (parsed[name] - pd.Timestamp(0)) / pd.Timedelta(days=1)
            out.append(days.astype("float64"))
            if name in self.hours_:
                out.append(when.hour.astype("float64"))
        return np.column_stack(out) if out else np.empty((len(parsed), 0))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        names = []
        for name in self.columns_:
            names += [f"{name}_{part}" for part in (*PARTS, "days")] + ([f"{name}_hour"] if name in self.hours_ else [])
        return np.asarray(names, dtype=object)


class TextComponents(TransformerMixin, BaseEstimator):
    """A text column as the main components of its character n-grams (TF-IDF of 3- and 4-grams within words, then
    a truncated SVD): names that share a brand or a word end up close, which target encoding of whole values
    cannot see. A missing value is empty text."""

    def __init__(self, n_components: int = TEXT_COMPONENTS, seed: int = 0):
        self.n_components = n_components
        self.seed = seed

    @staticmethod
    def _text(X) -> np.ndarray:
        return np.asarray([v if isinstance(v, str) else "" for v in as_text(X)[:, 0]], dtype=object)

    def fit(self, X, y=None):
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer_ = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 4), max_features=5000)
        grams = self.vectorizer_.fit_transform(self._text(X))
        k = min(self.n_components, grams.shape[1] - 1)
        self.svd_ = TruncatedSVD(k, random_state=self.seed).fit(grams) if k >= 1 else None
        self.n_out_ = k if k >= 1 else grams.shape[1]
        return self

    def transform(self, X) -> np.ndarray:
        grams = self.vectorizer_.transform(self._text(X))
        return self.svd_.transform(grams) if self.svd_ is not None else grams.toarray()

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.asarray([f"text{i}" for i in range(self.n_out_)], dtype=object)


def _text() -> FunctionTransformer:
    return FunctionTransformer(as_text, feature_names_out="one-to-one")


def preparation(
    roles: Roles, features, native_categories: bool, seed: int, task: str | None = None, text: str = TEXT_CHOICES[0]
) -> ColumnTransformer:
    """The ColumnTransformer for `roles`: numbers imputed then `features` (or None), dates as parts, categories
    one-hot (ordinal with `native_categories`), many-valued text target-encoded and, by `text`, as n-gram
    components."""
    parts = []
    numeric = roles.names(NUMERIC)
    if numeric:
        steps = [SimpleImputer(strategy=median_or_zero, add_indicator=True, keep_empty_features=True)]
        parts.append(("numeric", make_pipeline(*steps, *([features] if features is not None else [])), numeric))
    if dates := roles.names(DATETIME):
        formats = {col.name: col.date_format for col in roles.columns if col.role == DATETIME}
        imputer = SimpleImputer(strategy=median_or_zero, keep_empty_features=True)
        parts.append(("dates", make_pipeline(DateParts(formats), imputer), dates))
    if categorical := roles.names(CATEGORICAL):
        if native_categories:
            encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan, max_categories=254)
        else:
            encoder = OneHotEncoder(
                handle_unknown="infrequent_if_exist",
                min_frequency=MIN_FREQUENCY,
                max_categories=MAX_ONE_HOT,
                sparse_output=False,
                dtype=np.uint8,  # 0 and 1 exactly; stacked into the numbers' dtype, a byte a cell until then
            )
            filled = SimpleImputer(strategy="constant", fill_value=MISSING)
            encoder = make_pipeline(filled, FunctionTransformer(as_unicode, feature_names_out="one-to-one"), encoder)
        parts.append((CATEGORICAL, make_pipeline(_text(), encoder), categorical))
    if many := roles.names(HIGH_CARDINALITY):
        splitter = KFold if task == REGRESSION else StratifiedKFold
        folds = splitter(n_splits=5, shuffle=True, random_state=seed)  # its cross-fitting, seeded
        parts.append((HIGH_CARDINALITY, make_pipeline(_text(), TargetEncoder(cv=folds)), many))
        if text == "components":
            parts += [(f"text_{i}", TextComponents(seed=seed), [name]) for i, name in enumerate(many)]
    return ColumnTransformer(parts, remainder="drop")


def native_category_names(roles: Roles) -> list[str]:
    """The output names of the ordinal-encoded categorical columns, as a native-categories model is told them."""
    return [f"{CATEGORICAL}__{name}" for name in roles.names(CATEGORICAL)]
