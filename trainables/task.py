"""The task a target asks for, decided once: classification (labels) or regression (a number to predict)."""

from __future__ import annotations

import pandas as pd

from search.common.contract import CLASSIFICATION, REGRESSION
from search.common.errors import UsageError

AUTO = "auto"
MAX_CODES = 20  # a whole-number target with at most this many distinct values is a set of class codes


def detect_task(y: pd.Series, asked: str = AUTO) -> tuple[str, str]:
    """The task for target `y` and why: `asked` unless `auto`, else read off the values (labels: text, booleans, few
    whole numbers)."""
    numeric = pd.api.types.is_numeric_dtype(y) and not pd.api.types.is_bool_dtype(y)
    distinct = int(y.nunique())
    if asked == REGRESSION:
        if not numeric:
            raise UsageError(
                f"--task regression needs a numeric target, and {y.name!r} holds text (such as {y.iloc[0]!r}): "
                "use --task classification or auto"
            )
        return REGRESSION, "--task regression"
    if asked == CLASSIFICATION:
        return CLASSIFICATION, "--task classification"
    if not numeric:
        return CLASSIFICATION, "the target holds text or booleans: labels"
    whole = bool((y.dropna() == y.dropna().round()).all())
    if whole and distinct <= MAX_CODES:
        return CLASSIFICATION, f"the target holds {distinct} whole-number values: class codes"
    if whole:
        return REGRESSION, f"the target holds {distinct} distinct whole numbers (more than {MAX_CODES}): a quantity"
    return REGRESSION, f"the target holds numbers with fractions ({distinct} distinct values): a quantity"
