"""The report's parameter figures: hyperparameter importance and parallel coordinates of the best trials."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from search.common.runs_table import ranked, row_dict
from search.reporting.importance import Importance
from search.reporting.plots import FAMILY_ORDER, LABELS, _empty, family_styles, new_figure, ordered

SHARED = "#555555"


def _param_label(name: str) -> str:
    if "/" in name:
        family, param = name.split("/", 1)
        return f"{param}  [{family}]"
    return {"model": "model family", "feature_set": "feature set"}.get(name, name)


def param_importance(importance: Importance, top: int = 20) -> Figure:
    """Horizontal bars of the normalised importances; conditional parameters in their family's colour."""
    items = [(k, v) for k, v in importance.values.items() if v > 0][:top]
    rest = len(importance.values) - len(items)
    fig = new_figure(10, 1.9 + 0.36 * max(len(items), 3))
    title = "Which choices mattered: hyperparameter importance"
    if not items:
        return _empty(fig, title, f"No importance computed: {importance.note}")
    styles = family_styles(importance.conditional.values())
    ax = fig.add_subplot()
    colors = [styles[importance.conditional[n]][0] if n in importance.conditional else SHARED for n, _ in items]
    y = np.arange(len(items))
    ax.barh(y, [v for _, v in items], color=colors, height=0.7)
    for yi, (_, value) in zip(y, items, strict=True):
        ax.annotate(f"{value:.2f}", (value, yi), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    ax.set_yticks(y, [_param_label(n) for n, _ in items])
    ax.set_ylim(len(items) - 0.5, -0.5)
    ax.set_xlim(0, max(v for _, v in items) * 1.15)
    xlabel = "importance (share of the total; higher = more decisive for reaching the top trials)"
    if rest:
        xlabel += f"\n{rest} more parameter(s) scored 0 or below the top {top}: listed in the report"
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"{title}\n{importance.method}", fontsize=11)
    handles = [Line2D([], [], color=SHARED, linewidth=8, label="in every trial")]
    handles += [
        Line2D([], [], color=styles[f][0], linewidth=8, label=f"only in {f} trials")
        for f in ordered(importance.conditional.values(), FAMILY_ORDER)
        if any(n in importance.conditional and importance.conditional[n] == f for n, _ in items)
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="parameter present")
    return fig


def _axis_values(column: pd.Series) -> tuple[np.ndarray, list[tuple[float, str]]]:
    """Values scaled to [0, 1] and the (position, label) ticks of one parallel axis."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().sum() == 0 or numeric.notna().sum() < column.notna().sum():
        cats = ordered(column.dropna(), [*FAMILY_ORDER])
        pos = {c: (i + 0.5) / len(cats) for i, c in enumerate(cats)}
        return column.map(lambda v: pos.get(str(v), np.nan)).to_numpy(float), [(p, c) for c, p in pos.items()]
    lo, hi = float(numeric.min()), float(numeric.max())
    log = lo > 0 and hi / lo > 20
    values = np.log10(numeric) if log else numeric
    vlo, vhi = (np.log10(lo), np.log10(hi)) if log else (lo, hi)
    span = vhi - vlo or 1.0
    scaled = 0.05 + 0.9 * (values - vlo) / span
    ticks = [vlo, (vlo + vhi) / 2, vhi] if vhi > vlo else [vlo]
    if not log and (numeric.dropna() % 1 == 0).all():  # integers: integer ticks only
        ticks = sorted({float(round(t)) for t in ticks})
    return scaled.to_numpy(float), [(0.05 + 0.9 * (t - vlo) / span, _fmt(10**t if log else t)) for t in ticks]


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.3f}".rstrip("0").rstrip(".")


def _parallel(ax: Axes, table: pd.DataFrame, colors: list, widths: list[float]) -> None:
    columns = list(table.columns)
    scaled = {}
    for i, col in enumerate(columns):
        scaled[col], ticks = _axis_values(table[col])
        ax.axvline(i, color="black", linewidth=0.8, zorder=1)
        for pos, label in ticks:
            ax.text(i - 0.03, pos, label, ha="right", va="center", fontsize=8, zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9, "pad": 0.5})  # fmt: skip
    for r in range(len(table)):
        ax.plot(range(len(columns)), [scaled[c][r] for c in columns], color=colors[r], linewidth=widths[r],
                alpha=0.8, zorder=4 if widths[r] > 2 else 2)  # fmt: skip
    names = {**LABELS, "model": "model family", "feature_set": "feature set"}
    ax.set_xticks(range(len(columns)), [names.get(c, c).replace(" (", "\n(") for c in columns], fontsize=9)
    ax.set_xlim(-0.6, len(columns) - 0.6)
    ax.set_ylim(-0.02, 1.02)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)


def parallel_coordinates(
    trials: pd.DataFrame, hyperparams: list[str], metric: str = "val_accuracy", top: int = 15
) -> Figure:
    """Top: the best trials across model, feature set and scores. Bottom: the best family's hyperparameters."""
    fig = new_figure(11, 9)
    best = ranked(trials, metric)[:top]
    if not best:
        return _empty(fig, "Parallel coordinates of the best trials", "no completed trial")
    upper, lower = fig.subfigures(2, 1, height_ratios=[1, 1])
    ax = upper.add_subplot()
    shared = ["feature_set", "model", "fit_time_s", "train_accuracy", "val_f1", metric]
    table = pd.DataFrame(best)[list(dict.fromkeys(shared))]
    styles = family_styles(table["model"])
    _parallel(ax, table, [styles[m][0] for m in table["model"]], [3.5] + [1.4] * (len(table) - 1))
    families = ordered(table["model"], FAMILY_ORDER)
    handles = [Line2D([], [], color=styles[f][0], linewidth=2, label=f) for f in families]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="model (thick: best)")
    ax.set_title(f"The {len(best)} best trials (ranked by {metric}, release tie-break), one line each")
    family = best[0]["model"]
    mine = [row_dict(r) for r in ranked(trials[trials["model"] == family], metric)]
    params = [p for p in hyperparams if any(r.get(p) is not None for r in mine)]
    ax2 = lower.add_subplot()
    if len(mine) < 2 or not params:
        ax2.set_axis_off()
        ax2.text(0.5, 0.5, f"{family}: {len(mine)} completed trial(s), too few to compare", ha="center",
                 transform=ax2.transAxes)  # fmt: skip
        return fig
    scores = pd.DataFrame(mine)[metric].astype(float)
    norm = Normalize(scores.min(), scores.max() if scores.max() > scores.min() else scores.min() + 1e-9)
    cmap = colormaps["viridis"]
    _parallel(ax2, pd.DataFrame(mine)[[*params, metric]], [cmap(norm(s)) for s in scores],
              [3.5] + [1.4] * (len(mine) - 1))  # fmt: skip
    lower.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=ax2, label=LABELS.get(metric, metric), shrink=0.8)
    ax2.set_title(f"Hyperparameters of all {len(mine)} completed {family} trials (the best family); thick: best")
    return fig
