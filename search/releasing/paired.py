"""Whether a test part can tell two models apart: an exact McNemar test on the same rows, two-sided binomial on the
rows one model gets right and the other wrong (for regressors, a Wilcoxon signed-rank test on squared errors)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

import numpy as np
from scipy.stats import binomtest

ALPHA = 0.05
TEST = "exact McNemar test (two-sided binomial on the discordant rows)"


@cache
def p_value(new_only: int, holder_only: int) -> float:
    """Two-sided exact McNemar p-value of `new_only` vs `holder_only` discordant rows (1.0 with none)."""
    discordant = new_only + holder_only
    return 1.0 if discordant == 0 else float(binomtest(new_only, discordant, 0.5).pvalue)


@cache
def needed(discordant: int, alpha: float = ALPHA) -> int | None:
    """The fewest of `discordant` rows that must fall one way for p < alpha; None when even all of them are too few."""
    return next((k for k in range(discordant // 2 + 1, discordant + 1) if p_value(k, discordant - k) < alpha), None)


@cache
def fewest_discordant(alpha: float = ALPHA) -> int:
    """The fewest discordant rows, all one way, that can show a difference at `alpha` (6 at 0.05), whatever the size
    of the test part."""
    return next(n for n in range(1, 64) if p_value(n, 0) < alpha)


@dataclass(frozen=True)
class Paired:
    """Two models' per-row results on the same test rows, and what they show."""

    n_rows: int
    new_right: int
    holder_right: int
    new_only: int  # rows the new model gets right and the holder wrong
    holder_only: int  # rows the holder gets right and the new model wrong
    alpha: float = ALPHA

    @property
    def discordant(self) -> int:
        """Rows the two models disagree on the correctness of."""
        return self.new_only + self.holder_only

    @property
    def p_value(self) -> float:
        """Two-sided exact McNemar p-value."""
        return p_value(self.new_only, self.holder_only)

    @property
    def new_is_better(self) -> bool:
        """Whether the new model gets more rows right and the test part can tell it apart from the holder."""
        return self.new_only > self.holder_only and self.p_value < self.alpha

    def margin(self) -> str:
        """What this test part needs to tell the two apart, in words."""
        least, alpha = fewest_discordant(self.alpha), self.alpha
        if self.discordant < least:
            share = f"{least / self.n_rows:.2f} of accuracy on {self.n_rows} rows" if self.n_rows else "no rows"
            return f"telling them apart takes at least {least} discordant rows all one way ({share}, p < {alpha:g})"
        k = needed(self.discordant, self.alpha)
        return f"it takes at least {k} of these {self.discordant} discordant rows one way (p < {alpha:g})"

    def describe(self, new: str, holder: str) -> str:
        """`v3 got 29/30, v2 28/30: 1 row of difference, 1 discordant row (1 for v3, 0 for v2), p = 1; ...`."""
        diff = abs(self.new_right - self.holder_right)
        rows = "row" if diff == 1 else "rows"
        pairs = "row" if self.discordant == 1 else "rows"
        return (
            f"{new} got {self.new_right}/{self.n_rows}, {holder} {self.holder_right}/{self.n_rows}: {diff} {rows} of "
            f"difference, {self.discordant} discordant {pairs} ({self.new_only} for {new}, {self.holder_only} for "
            f"{holder}), McNemar p = {self.p_value:.3g}; {self.margin()}"
        )

    def as_dict(self) -> dict[str, Any]:
        """The comparison for the model card: counts, p-value, the test and the margin."""
        return {"test": TEST, **asdict(self), "discordant": self.discordant, "p_value": self.p_value,
                "margin": self.margin(), "new_is_better": self.new_is_better}  # fmt: skip


def compare(new_correct: Sequence[bool], holder_correct: Sequence[bool], alpha: float = ALPHA) -> Paired:
    """The paired comparison of two models from whether each got each test row right (the same rows, in order)."""
    new, held = np.asarray(new_correct, bool), np.asarray(holder_correct, bool)
    if new.shape != held.shape:
        raise ValueError(f"not the same test rows: {new.size} and {held.size} results")
    return Paired(
        int(new.size), int(new.sum()), int(held.sum()), int((new & ~held).sum()), int((held & ~new).sum()), alpha
    )


ERRORS_TEST = "Wilcoxon signed-rank test on the rows' squared errors (two-sided)"


@dataclass(frozen=True)
class PairedErrors:
    """Two regressors' squared errors on the same test rows, and what they show."""

    n_rows: int
    new_rmse: float
    holder_rmse: float
    new_closer: int  # rows the new model predicts closer than the holder
    holder_closer: int
    p_value: float
    alpha: float = ALPHA

    @property
    def new_is_better(self) -> bool:
        """Whether the new model's squared errors are smaller and the test part can tell it apart from the holder."""
        return self.new_rmse < self.holder_rmse and self.p_value < self.alpha

    def describe(self, new: str, holder: str) -> str:
        """`v3 RMSE 52.1, v2 54.0 on 89 rows: closer on 50 rows, farther on 39, Wilcoxon p = 0.21`."""
        return (
            f"{new} RMSE {self.new_rmse:.4g}, {holder} {self.holder_rmse:.4g} on {self.n_rows} rows: {new} closer on "
            f"{self.new_closer}, {holder} on {self.holder_closer}, Wilcoxon signed-rank p = {self.p_value:.3g} "
            f"(told apart below {self.alpha:g})"
        )

    def as_dict(self) -> dict[str, Any]:
        """The comparison for the model card: RMSEs, rows closer, p-value and the test."""
        return {"test": ERRORS_TEST, **asdict(self), "new_is_better": self.new_is_better}


def compare_errors(new_errors: Sequence[float], holder_errors: Sequence[float], alpha: float = ALPHA) -> PairedErrors:
    """The paired comparison of two regressors from their errors on each test row (the same rows, in order)."""
    from scipy.stats import wilcoxon

    new, held = np.asarray(new_errors, float) ** 2, np.asarray(holder_errors, float) ** 2
    if new.shape != held.shape:
        raise ValueError(f"not the same test rows: {new.size} and {held.size} results")
    differ = new != held
    p = float(wilcoxon(new[differ], held[differ]).pvalue) if differ.sum() else 1.0
    rmse = lambda squared: float(np.sqrt(squared.mean()))  # noqa: E731
    return PairedErrors(
        int(new.size), rmse(new), rmse(held), int((new < held).sum()), int((held < new).sum()), p, alpha
    )
