"""The report's parameter figures: hyperparameter importance and parallel coordinates of the best trials.

Not Optuna's: its importances lose which family a parameter belongs to, and its parallel coordinates truncated names,
drew the worst trials near-white, did not mark log axes, and cannot be a panel of this figure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps, patheffects
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator, StrMethodFormatter

from search.common import contract
from search.common.trials import rank_trials as ranked
from search.common.trials import row_dict
from search.reporting.importance import Importance
from search.reporting.plots import FAMILY_ORDER, LABELS, _empty, family_styles, new_figure, ordered

SHARED = "#555555"
HALO = [patheffects.withStroke(linewidth=1.6, foreground="white", alpha=0.8)]  # readable; lines stay visible
LOG_RATIO = 20.0  # a positive axis whose largest value is more than this times its smallest is logarithmic


def _param_label(name: str) -> str:
    """`svm/C` -> `C` (its panel names the family), `feature_set` -> `feature set`."""
    labels = {
        contract.MODEL: "model family",
        contract.FEATURE_SET: "feature set",
        contract.TEXT_FEATURES: "text features",
    }
    return labels.get(name, name.split("/", 1)[-1])


def param_importance(importance: Importance, top: int = 8) -> Figure:
    """One panel of bars over every completed trial, then one per family over its own trials (n in its title)."""
    panels = [("all model families", SHARED, importance)] if importance.values else []
    families = ordered(importance.per_family, FAMILY_ORDER)
    styles = family_styles(families)
    panels += [(f, styles[f][0], importance.per_family[f]) for f in families if importance.per_family[f].values]
    left_out = [f"{f} ({importance.per_family[f].note})" for f in families if not importance.per_family[f].values]
    sizes = [min(len(imp.values), top) for _, _, imp in panels]
    fig = new_figure(10, 1.6 + sum(0.3 * k + 0.75 for k in sizes) + 0.25 * len(left_out))
    title = "Which choices mattered: hyperparameter importance (each panel's shares sum to 1 over its own trials)"
    if not panels:
        return _empty(fig, title, f"No importance computed: {importance.note}")
    axes = fig.subplots(len(panels), 1, sharex=True, height_ratios=[k + 1.5 for k in sizes], squeeze=False)[:, 0]
    for ax, (name, color, imp), k in zip(axes, panels, sizes, strict=True):
        items = list(imp.values.items())[:k]
        y = np.arange(k)
        ax.barh(y, [v for _, v in items], color=color, height=0.7)
        for yi, (_, value) in zip(y, items, strict=True):
            ax.annotate(f"{value:.2f}", (value, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
        ax.set_yticks(y, [_param_label(n) + (f" (n={imp.having[n]})" if n in imp.having else "") for n, _ in items])
        ax.set_ylim(k - 0.5, -0.5)
        ax.grid(axis="x", alpha=0.3)
        more = f"; {len(imp.values) - k} more in the report" if len(imp.values) > k else ""
        ax.set_title(f"{name}: over n={imp.n_trials} completed trials{more}", fontsize=10, loc="left")
    axes[-1].set_xlim(0, 1.08)
    xlabel = "importance (share of the panel's total; higher = more decisive for reaching that panel's top trials)"
    if left_out:
        xlabel += "".join(f"\nno panel for {f}" for f in left_out)
    axes[-1].set_xlabel(xlabel)
    method = importance.method.split(" (")[0]
    fig.suptitle(f"{title}\n{method}, computed separately per panel", fontsize=11)
    return fig


@dataclass
class ParallelAxis:
    """One vertical axis of a parallel-coordinates panel: values scaled to [0, 1], ticks, whether it is logarithmic."""

    scaled: np.ndarray
    ticks: list[tuple[float, str]]
    log: bool = False
    categorical: bool = False


def axis_values(column: pd.Series) -> ParallelAxis:
    """Scale one column onto a parallel axis: categories evenly spaced, numbers linear or (spanning more than
    LOG_RATIO) logarithmic."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().sum() == 0 or numeric.notna().sum() < column.notna().sum():
        cats = ordered(column.dropna(), [*FAMILY_ORDER])
        pos = {c: (i + 0.5) / len(cats) for i, c in enumerate(cats)}
        values = column.map(lambda v: pos.get(str(v), np.nan)).to_numpy(float)
        return ParallelAxis(values, [(p, c) for c, p in pos.items()], categorical=True)
    lo, hi = float(numeric.min()), float(numeric.max())
    log = lo > 0 and hi / lo > LOG_RATIO
    values = np.log10(numeric) if log else numeric
    vlo, vhi = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    span = vhi - vlo or 1.0
    scaled = (0.05 + 0.9 * (values - vlo) / span).to_numpy(float)
    if log:
        ticks = [float(e) for e in range(int(np.ceil(vlo - 1e-9)), int(np.floor(vhi + 1e-9)) + 1)]
        if len(ticks) < 2:  # less than two powers of ten inside: the ends too, so the scale can be read
            ticks = sorted({vlo, *ticks, vhi})
        labels = [_fmt(10**t) for t in ticks]
    else:  # the ends (the best and worst values) and round values between them, not crowding the ends
        integer = bool((numeric.dropna() % 1 == 0).all())
        inner = MaxNLocator(nbins=4, integer=integer).tick_values(lo, hi)
        ticks = sorted({lo, hi, *(float(t) for t in inner if lo + 0.15 * span < t < hi - 0.15 * span)})
        labels = [_fmt(t) for t in ticks]
    return ParallelAxis(
        scaled, [(0.05 + 0.9 * (t - vlo) / span, label) for t, label in zip(ticks, labels, strict=True)], log
    )


def _fmt(value: float) -> str:
    """A tick label: 0.05, 12, 250, 0.00123, 1e-5."""
    size = abs(value)
    if value == 0 or 1e-2 <= size < 1e4:
        return f"{value:.3f}".rstrip("0").rstrip(".")
    if 1e-3 <= size < 1e-2:
        return f"{value:.3g}"
    return f"{value:.2g}".replace("e-0", "e-").replace("e+0", "e").replace("e+", "e")


def _parallel(ax: Axes, table: pd.DataFrame, colors: list, widths: list[float]) -> None:
    """One line per row (best first) across the table's columns. A categorical axis is a bracket per category, its
    lines spread over it (so each can be counted) and level through a gutter that holds the category's name."""
    columns = list(table.columns)
    names = {**LABELS, contract.MODEL: "model family", contract.FEATURE_SET: "feature set"}
    pt_per_unit = ax.figure.figure.get_figwidth() * 72 * ax.get_position().width / len(columns)
    xs: list[list[float]] = [[] for _ in range(len(table))]
    ys: list[list[float]] = [[] for _ in range(len(table))]
    labels = []
    for i, col in enumerate(columns):
        axis = axis_values(table[col])
        y = axis.scaled.copy()
        if axis.categorical:
            half = 0.3 / len(axis.ticks)  # a bracket's half-height; the gap between brackets holds the names
            gutter = min(0.45, 0.02 + 4.4 * max(len(c) for _, c in axis.ticks) / 2 / pt_per_unit)
            for pos, label in axis.ticks:
                rows = np.flatnonzero(axis.scaled == pos)
                y[rows] = pos + half * np.linspace(1, -1, len(rows)) if len(rows) > 1 else pos
                ax.plot([i, i], [pos - half, pos + half], color="black", linewidth=2, zorder=1, solid_capstyle="butt")
                ax.text(i, pos + half + 0.01, label, ha="center", va="bottom", fontsize=7.5, zorder=5, gid="category")
            for r in range(len(table)):
                xs[r] += [i - gutter, i + gutter]
                ys[r] += [y[r], y[r]]
        else:
            ax.axvline(i, color="black", linewidth=0.8, zorder=1)
            for pos, label in axis.ticks:
                ax.plot([i - 0.025, i], [pos, pos], color="black", linewidth=0.8, zorder=1)
                ax.text(i - 0.04, pos, label, ha="right", va="center", fontsize=8, zorder=5, path_effects=HALO)
            for r in range(len(table)):
                xs[r].append(i)
                ys[r].append(y[r])
        name = names.get(col, col).replace(" (", "\n(")
        labels.append((f"{name[:-1]}, log)" if name.endswith(")") else f"{name}\n(log)") if axis.log else name)
    for r in range(len(table)):
        ax.plot(xs[r], ys[r], color=colors[r], linewidth=widths[r], alpha=0.8, zorder=4 if widths[r] > 2 else 2,
                gid="trial")  # fmt: skip
    ax.set_xticks(range(len(columns)), labels, fontsize=9)
    ax.set_xlim(-0.6, len(columns) - 0.4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def score_norm(scores: pd.Series) -> tuple[Normalize, int]:
    """A colour scale over the scores and the decimals its ticks need; a tie is padded (a zero-width range prints an
    offset on the colour bar)."""
    lo, hi = float(scores.min()), float(scores.max())
    if hi - lo < 1e-9:
        pad = max(abs(lo) * 0.005, 0.005)
        lo, hi = lo - pad, hi + pad
    decimals = int(min(5, max(2, np.ceil(-np.log10(hi - lo)) + 1)))
    return Normalize(lo, hi), decimals


def parallel_coordinates(
    trials: pd.DataFrame, hyperparams: list[str], metric: str = contract.VAL_ACCURACY, top: int = 15
) -> Figure:
    """Top: the best trials across model, feature set and scores. Bottom: the best family's hyperparameters, when
    it has two completed trials or more."""
    best = ranked(trials, metric)[:top]
    if not best:
        return _empty(new_figure(11, 4.5), "Parallel coordinates of the best trials", "no completed trial")
    family = best[0][contract.MODEL]
    mine = [row_dict(r) for r in ranked(trials[trials[contract.MODEL] == family], metric)]
    params = [p for p in hyperparams if any(r.get(p) is not None for r in mine)]
    lower_shown = len(mine) >= 2 and bool(params)
    fig = new_figure(11, 9 if lower_shown else 4.9)
    upper, lower = fig.subfigures(2, 1, height_ratios=[1, 1]) if lower_shown else (fig, None)
    ax = upper.add_subplot()
    regression = contract.task_of_metric(metric) == contract.REGRESSION
    train, partner = (
        (contract.TRAIN_R2, contract.partner_of(metric)) if regression else (contract.TRAIN_ACCURACY, contract.VAL_F1)
    )
    shared = [contract.FEATURE_SET, contract.MODEL, contract.FIT_TIME_S, train, partner, metric]
    table = pd.DataFrame(best)[list(dict.fromkeys(shared))]
    styles = family_styles(table[contract.MODEL])
    _parallel(ax, table, [styles[m][0] for m in table[contract.MODEL]], [3.5] + [1.4] * (len(table) - 1))
    families = ordered(table[contract.MODEL], FAMILY_ORDER)
    handles = [Line2D([], [], color=styles[f][0], linewidth=2, label=f) for f in families]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="model (thick: best)")
    title = f"The {len(best)} best trials (ranked by {metric}, release tie-break), one line each"
    if lower is None:
        why = f"{len(mine)} completed trial" if len(mine) < 2 else "no recorded hyperparameter"
        title += f"\n(no hyperparameter panel: the best family, {family}, has {why})"
    ax.set_title(title)
    if lower is None:
        return fig
    frame = pd.DataFrame(mine)
    scores = frame[metric].astype(float)
    norm, decimals = score_norm(scores)
    cmap = colormaps["viridis"]
    _parallel(lower.add_subplot(), frame[[*params, metric]], [cmap(norm(s)) for s in scores],
              [3.5] + [1.4] * (len(mine) - 1))  # fmt: skip
    ax2 = lower.axes[0]
    bar = lower.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax2, label=LABELS.get(metric, metric), shrink=0.8)
    bar.locator = MaxNLocator(nbins=5)
    bar.formatter = StrMethodFormatter(f"{{x:.{decimals}f}}")  # fixed decimals, never an offset
    bar.update_ticks()
    ax2.set_title(f"Hyperparameters of all {len(mine)} completed {family} trials (the best family); thick: best")
    return fig
