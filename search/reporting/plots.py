"""The report's score figures: best trial per model family, every trial by feature set, the optimisation history.

Each takes the trial table of `search.common.runs_table` and returns a matplotlib `Figure` (no pyplot state). Not
Optuna's figures: it has none per family or feature set, and its history drops stopped and failed trials.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from search.common import contract
from search.common.trials import best_per, rank_trials
from trainables.features import FEATURE_SETS
from trainables.models import ALL_MODELS

FAMILY_ORDER, FEATURE_ORDER = tuple(ALL_MODELS), tuple(FEATURE_SETS)
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "h")
LABELS = {
    contract.VAL_ACCURACY: "validation accuracy",
    contract.VAL_F1: "validation macro F1",
    contract.TRAIN_ACCURACY: "training accuracy",
    contract.TRAIN_F1: "training macro F1",
    contract.FIT_TIME_S: "fit time of one fold (s)",
    contract.VAL_BALANCED_ACCURACY: "validation balanced accuracy",
    contract.VAL_ROC_AUC: "validation ROC AUC",
    contract.VAL_LOG_LOSS: "validation log loss",
    contract.VAL_RMSE: "validation RMSE (target's units)",
    contract.VAL_MAE: "validation MAE (target's units)",
    contract.VAL_R2: "validation R²",
}
SHORT = {contract.VAL_ACCURACY: "acc", contract.VAL_F1: "F1", contract.VAL_RMSE: "RMSE", contract.VAL_MAE: "MAE"}
UNBOUNDED = (contract.VAL_RMSE, contract.VAL_MAE, contract.VAL_R2, contract.VAL_LOG_LOSS)  # not scores in [0, 1]
CV_NOTE = "mean over CV folds of the development part"


def ordered(values: Iterable, known: Iterable[str]) -> list[str]:
    """Distinct values: the known ones in their usual order first, then the others sorted."""
    present = {str(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))}
    return [k for k in known if k in present] + sorted(present - set(known))


def family_styles(families: Iterable[str]) -> dict[str, tuple[str, str]]:
    """A fixed (colour, marker) per model family, the same in every figure of a report."""
    names = [*FAMILY_ORDER, *sorted(set(families) - set(FAMILY_ORDER))]
    return {f: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, f in enumerate(names)}


def score_limits(values: Iterable[float], metric: str = contract.VAL_ACCURACY) -> tuple[float, float]:
    """Axis limits zoomed on the values (0.95 must not look flat), within [0, 1] plus room for a score in [0, 1]."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(finite), max(finite)
    if metric in UNBOUNDED:
        span = max(hi - lo, 0.02 * max(abs(hi), 1e-9))
        return lo - 0.12 * span, hi + 0.12 * span
    span = max(hi - lo, 0.02)
    return max(0.0, lo - 0.12 * span), min(1.0 + 0.06 * span, hi + 0.12 * span)


def score_label(metric: str) -> str:
    """Axis label of a score: what it is, that it is a CV mean, that the axis is zoomed."""
    return f"{LABELS.get(metric, metric)}\n({CV_NOTE}; axis zoomed)"


def new_figure(width: float, height: float) -> Figure:
    """A figure with constrained layout, detached from pyplot."""
    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path, dpi: int = 110) -> Path:
    """Write `fig` as a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path


def _empty(fig: Figure, title: str, message: str) -> Figure:
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(title)
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True, transform=ax.transAxes)
    return fig


def _main_and_failed(fig: Figure, n_failed: int, label: str) -> tuple[Axes, Axes | None]:
    if not n_failed:
        return fig.add_subplot(), None
    grid = fig.add_gridspec(2, 1, height_ratios=[9, 1])
    ax = fig.add_subplot(grid[0])
    strip = fig.add_subplot(grid[1], sharex=ax)
    strip.set_yticks([0.5], [f"{label}\n({n_failed})"])
    strip.set_ylim(0, 1)
    strip.tick_params(axis="y", length=0)
    ax.tick_params(axis="x", labelbottom=False)
    return ax, strip


def _legend(ax: Axes, styles: dict[str, tuple[str, str]], families: list[str], extra: list[Line2D]) -> None:
    handles = [
        Line2D([], [], color=styles[f][0], marker=styles[f][1], linestyle="", markersize=8, label=f) for f in families
    ]
    ax.legend(
        handles=handles + extra, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=contract.MODEL
    )


def model_comparison(trials: pd.DataFrame, metric: str = contract.VAL_ACCURACY) -> Figure:
    """Best trial of each model family (ranked as the release ranks): its validation accuracy and F1, or a
    regressor's metric and its partner."""
    fig = new_figure(9, 1.6 + 0.55 * max(1, trials[contract.MODEL].nunique()))
    title = "Best trial of each model family"
    families = ordered(trials[contract.MODEL], FAMILY_ORDER)
    if not families:
        return _empty(fig, title, "no trials")
    per_family = best_per(trials, contract.MODEL, metric)
    best = {f: per_family.get(f) for f in families}
    order = [r[contract.MODEL] for r in rank_trials([b for b in best.values() if b], metric)]
    families = order + [f for f in families if best[f] is None]
    ax = fig.add_subplot()
    regression = contract.task_of_metric(metric) == contract.REGRESSION
    first, second = (metric, contract.partner_of(metric)) if regression else (contract.VAL_ACCURACY, contract.VAL_F1)
    scores = [b[m] for b in best.values() if b for m in (first, second)]
    lo, hi = score_limits(scores, first)
    hi = hi + 0.18 * (hi - lo)  # room for the value labels
    ax.set_xlim(lo, hi)
    for y, family in enumerate(families):
        row = best[family]
        if row is None:
            counts = trials[trials[contract.MODEL] == family][contract.OUTCOME].value_counts().to_dict()
            text = "no completed trial (" + ", ".join(f"{n} {k}" for k, n in counts.items()) + ")"
            ax.text(lo + 0.02 * (hi - lo), y, text, va="center", color="dimgray", style="italic")
            continue
        acc, f1 = row[first], row[second]
        ax.plot([min(acc, f1), max(acc, f1)], [y, y], color="lightgray", zorder=1)
        ax.scatter([acc], [y], s=90, color="#1f4e79", marker="o", zorder=3, label=first if y == 0 else None)
        named = "val_f1 (macro)" if second == contract.VAL_F1 else second
        ax.scatter([f1], [y], s=90, color="#e07b00", marker="D", zorder=3, label=named if y == 0 else None)
        digits = ".4g" if regression else ".3f"
        ax.annotate(f"{SHORT.get(first, first)} {acc:{digits}} | {SHORT.get(second, second)} {f1:{digits}}",
                    (max(acc, f1), y), xytext=(12, 0), textcoords="offset points", va="center", fontsize=9)  # fmt: skip
    n_by = trials.groupby(contract.MODEL)[contract.OUTCOME].apply(lambda s: int((s == contract.COMPLETED).sum()))
    ax.set_yticks(range(len(families)), [f"{f}\n({n_by.get(f, 0)} completed)" for f in families])
    ax.set_ylim(len(families) - 0.5, -0.5)
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(f"score of the family's best trial ({CV_NOTE}; axis zoomed)")
    ax.set_title(f"{title} (best by {metric}, tie-break as in the release)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="score")
    return fig


def _slots(trials: pd.DataFrame, groups: list[str], families: list[str]) -> np.ndarray:
    """x position of each trial: its feature set's group, an offset per family, a small deterministic jitter."""
    rng = np.random.default_rng(0)
    width = 0.8 / len(families)
    group_x = trials[contract.FEATURE_SET].map({g: i for i, g in enumerate(groups)}).to_numpy(dtype=float)
    offset = trials[contract.MODEL].map({f: (j - (len(families) - 1) / 2) * width for j, f in enumerate(families)})
    return group_x + offset.to_numpy(dtype=float) + rng.uniform(-0.3, 0.3, len(trials)) * width


def _trial_points(
    fig: Figure, trials: pd.DataFrame, x: np.ndarray, metric: str, size: int, zorder: int = 1
) -> tuple[Axes, Axes | None]:
    """Each trial's score at `x`, by model family: filled when completed, hollow when stopped early; failed trials as
    crosses in a strip of their own under the axes. Returns (axes, strip)."""
    really = trials[contract.OUTCOME].isin([contract.FAILED, contract.NO_RESULT])
    failed = really | trials[metric].isna()  # with a trial stopped before its first score (cut by a budget)
    ax, strip = _main_and_failed(fig, int(failed.sum()), contract.FAILED if really[failed].all() else "no score")
    done = trials[contract.OUTCOME] == contract.COMPLETED
    families = ordered(trials[contract.MODEL], FAMILY_ORDER)
    styles = family_styles(families)
    for family in families:
        color, marker = styles[family]
        mine = trials[contract.MODEL] == family
        for filled in (True, False):
            sel = (mine & ~failed & (done if filled else ~done)).to_numpy()
            ax.scatter(x[sel], trials.loc[sel, metric], s=size, marker=marker, edgecolors=color, zorder=zorder,
                       facecolors=color if filled else "none", linewidths=1.2, alpha=0.85)  # fmt: skip
        if strip is not None:
            bad = (mine & failed).to_numpy()
            strip.scatter(x[bad], np.full(int(bad.sum()), 0.5), marker="x", color=color, s=size)
    ax.set_ylim(*score_limits(trials.loc[~failed, metric], metric))
    ax.set_ylabel(score_label(metric))
    return ax, strip


def stopped_marker(trials: pd.DataFrame, metric: str) -> list[Line2D]:
    """The legend's hollow marker, when a trial stopped early is drawn with a score (one stopped before its first
    score is a cross in the strip)."""
    drawn = (trials[contract.OUTCOME] == contract.STOPPED) & trials[metric].notna()
    hollow = Line2D([], [], color="gray", marker="o", markerfacecolor="none", linestyle="", label="stopped early")
    return [hollow] if drawn.any() else []


def all_runs_comparison(trials: pd.DataFrame, metric: str = contract.VAL_ACCURACY) -> Figure:
    """Every trial's score, grouped by feature set, coloured by model family; failed trials in their own strip."""
    fig = new_figure(10, 5.6)
    title = f"Every trial: {LABELS.get(metric, metric)} by feature set and model family"
    if trials.empty:
        return _empty(fig, title, "no trials")
    groups = ordered(trials[contract.FEATURE_SET], FEATURE_ORDER)
    families = ordered(trials[contract.MODEL], FAMILY_ORDER)
    ax, strip = _trial_points(fig, trials, _slots(trials, groups, families), metric, size=46)
    ax.grid(axis="y", alpha=0.3)
    bottom = strip if strip is not None else ax
    counts = trials.groupby(contract.FEATURE_SET).size()
    bottom.set_xticks(range(len(groups)), [f"{g}\n({counts.get(g, 0)} trials)" for g in groups])
    bottom.set_xlabel("feature set")
    bottom.set_xlim(-0.5, len(groups) - 0.5)
    for axis in (ax, strip):
        for i in range(1, len(groups)):
            if axis is not None:
                axis.axvline(i - 0.5, color="lightgray", linewidth=1)
    _legend(ax, family_styles(families), families, stopped_marker(trials, metric))
    ax.set_title(title)
    return fig


def optimization_history(trials: pd.DataFrame, metric: str = contract.VAL_ACCURACY) -> Figure:
    """Each trial's score in the order the searcher proposed it (tag trial_index) and the best score so far."""
    fig = new_figure(10, 5.2)
    title = f"Optimisation history: {LABELS.get(metric, metric)} per trial and best so far"
    if trials.empty:
        return _empty(fig, title, "no trials")
    frame = trials.copy()
    order = frame[contract.TRIAL_INDEX].astype("float")
    after = order.max() + 1 if order.notna().any() else 0.0
    frame["x"] = order.where(order.notna(), pd.Series(np.arange(len(frame)) + after, index=frame.index))
    ax, strip = _trial_points(fig, frame, frame["x"].to_numpy(dtype=float), metric, size=40, zorder=3)
    done = frame[frame[contract.OUTCOME] == contract.COMPLETED].sort_values("x")
    if not done.empty:
        best = done[metric].cummin() if contract.mode_of(metric) == "min" else done[metric].cummax()
        xs = [*done["x"], frame["x"].max()]
        # Over the points: under them, a search of a thousand trials hides it.
        ax.step(xs, [*best, best.iloc[-1]], where="post", color="black", linewidth=1.6, label="best so far", zorder=4)
    ax.grid(alpha=0.3)
    bottom = strip if strip is not None else ax
    bottom.set_xlabel("trial (tag trial_index: the order the searcher proposed it)")
    bottom.xaxis.get_major_locator().set_params(integer=True)
    extra = [Line2D([], [], color="black", linewidth=1.6, label="best so far (completed trials)")]
    extra += stopped_marker(frame, metric)
    families = ordered(frame[contract.MODEL], FAMILY_ORDER)
    _legend(ax, family_styles(families), families, extra)
    ax.set_title(title)
    return fig
