"""The report's Pareto figure: a score against a serving cost over every completed trial, the front as a step line.

Not Optuna's `plot_pareto_front`: it needs a multi-objective study, colours by trial number rather than model family,
and cannot mark the released trial.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import EngFormatter, FuncFormatter, LogLocator, NullFormatter

from search.common import contract
from search.common.pareto import COST_MEANING, Objective, front
from search.common.trials import Rows, number, records
from search.common.trials import completed as is_completed
from search.reporting import plots

LOG_SPAN = 100.0  # more than two decades: logarithmic axis
RELEASED = "#c00000"


def axis_label(objective: Objective, log: bool) -> str:
    """`predict_ms: CPU ms to predict 1,000 rows (lower is better; log scale)`."""
    if objective.unit:
        what = f"{objective.name}: {COST_MEANING.get(objective.name, objective.name)} ({objective.unit}"
        what = what.replace("(bytes", "(B") + f", {objective.direction}"
    else:
        what = f"{plots.LABELS.get(objective.name, objective.name)} ({plots.CV_NOTE}; {objective.direction}"
    return what + ("; log scale)" if log else ")")


def uses_log(values: Sequence[float]) -> bool:
    """Whether positive values span more than two decades."""
    finite = np.asarray([v for v in values if np.isfinite(v)], dtype=float)
    return bool(finite.size and finite.min() > 0 and finite.max() / finite.min() > LOG_SPAN)


def _style_axis(ax: Axes, which: str, objective: Objective, values: list[float]) -> None:
    log = uses_log(values)
    axis = ax.xaxis if which == "x" else ax.yaxis
    (ax.set_xlabel if which == "x" else ax.set_ylabel)(axis_label(objective, log))
    if log:
        (ax.set_xscale if which == "x" else ax.set_yscale)("log")
        axis.set_major_locator(LogLocator(base=10))
        axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))  # 10, 100: not 10^1, 10^2
    elif not objective.unit:
        (ax.set_xlim if which == "x" else ax.set_ylim)(*plots.score_limits(values, objective.name))
    elif min(values) >= 0:  # a linear cost axis starts at zero: the cheap corner has room, costs compare as ratios
        (ax.set_xlim if which == "x" else ax.set_ylim)(0, max(values) * 1.05 or 1.0)
    if objective.name == contract.MODEL_BYTES:
        axis.set_major_formatter(EngFormatter(unit="B"))


def front_figure(trials: Rows, objectives: Sequence[Objective], released: str | None = None) -> Figure:
    """The first objective (y) against the second (x) over completed trials, the two-objective front as a step line,
    and the released trial (its run id or run name) ringed and named in the legend, off the points."""
    y_obj, x_obj = objectives[0], objectives[1]
    rows = records(trials)
    done = [r for r in rows if is_completed(r) and _finite(r, x_obj.name) and _finite(r, y_obj.name)]
    fig = plots.new_figure(10.5, 6.2)
    heading = f"{y_obj.name} against {x_obj.name}: the Pareto front of the search"
    if not done:
        return plots._empty(fig, heading, "no completed trial records both objectives")
    table = pd.DataFrame(done)
    x, y = table[x_obj.name].astype(float), table[y_obj.name].astype(float)
    ax = fig.add_subplot()
    families = plots.ordered(table[contract.MODEL] if contract.MODEL in table else [], plots.FAMILY_ORDER)
    styles = plots.family_styles(families)
    for family in families:
        color, marker = styles[family]
        mine = (table[contract.MODEL] == family).to_numpy()
        ax.scatter(x[mine], y[mine], s=42, color=color, marker=marker, alpha=0.75, linewidths=0, zorder=3)
    best = front(done, [y_obj, x_obj])
    fx, fy = [float(r[x_obj.name]) for r in best], [float(r[y_obj.name]) for r in best]
    ax.scatter(fx, fy, s=90, facecolors="none", edgecolors="black", linewidths=1.3, zorder=4)
    handles = [Line2D([], [], color=styles[f][0], marker=styles[f][1], linestyle="", markersize=8, label=f)
               for f in families]  # fmt: skip
    handles.append(Line2D([], [], color="black", marker="o", markerfacecolor="none", markersize=10, linewidth=1.4,
                          label=f"Pareto front ({len(best)} trial{'s' if len(best) != 1 else ''})"))  # fmt: skip
    chosen = [r for r in done if released is not None and released in (r.get("run_id"), r.get("run_name"))]
    if chosen:
        rx, ry = float(chosen[0][x_obj.name]), float(chosen[0][y_obj.name])
        ax.scatter([rx], [ry], s=260, facecolors="none", edgecolors=RELEASED, linewidths=2.4, zorder=5)
        name = chosen[0].get("run_name") or f"trial {chosen[0].get(contract.TRIAL_INDEX)}"
        handles.append(Line2D([], [], color=RELEASED, marker="o", markerfacecolor="none", markersize=13,
                              markeredgewidth=2.2, linestyle="", label=f"released: {name}"))  # fmt: skip
    _style_axis(ax, "x", x_obj, x.tolist())
    _style_axis(ax, "y", y_obj, y.tolist())
    _staircase(ax, fx, fy, x_obj, y_obj)
    ax.grid(alpha=0.3, which="major")
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=contract.MODEL)
    ax.set_title(f"{heading}\n{_drawn_note(rows, len(done))}", fontsize=11)
    return fig


def _staircase(ax: Axes, fx: list[float], fy: list[float], x_obj: Objective, y_obj: Objective) -> None:
    """The front as a step line closed to the axes' edges: every trial beyond it (away from the better corner) is
    dominated. The point best on x drops to the worse y edge; the point best on y runs on to the worse x edge."""
    xlim, ylim = ax.get_xlim(), ax.get_ylim()
    x_worse = xlim[1] if x_obj.mode == "min" else xlim[0]
    y_worse = ylim[0] if y_obj.mode == "max" else ylim[1]
    sx = fx if x_obj.mode == "min" else [-v for v in fx]
    order = np.argsort(sx, kind="stable")  # best x first: y goes from its worst to its best along the front
    xs, ys = [fx[order[0]]], [y_worse]
    for i in order:
        xs += [fx[i], fx[i]]
        ys += [ys[-1], fy[i]]
    xs.append(x_worse)
    ys.append(ys[-1])
    ax.plot(xs, ys, color="black", linewidth=1.4, zorder=2)
    ax.set_xlim(xlim)
    ax.set_ylim(ylim)


def _finite(row: Mapping[str, Any], name: str) -> bool:
    return bool(np.isfinite(number(row.get(name))))


def _drawn_note(rows: list[Mapping[str, Any]], drawn: int) -> str:
    """`30 completed trials drawn; left out: 3 stopped early, 1 failed`."""
    words = (str(r.get(contract.OUTCOME) or contract.UNFINISHED) for r in rows if not is_completed(r))
    left = Counter(word.replace(contract.STOPPED, "stopped early") for word in words)
    missing = len(rows) - drawn - sum(left.values())
    if missing:
        left["without both metrics"] = missing
    note = f"{drawn} completed trial{'s' if drawn != 1 else ''} drawn"
    return note + ("; left out: " + ", ".join(f"{n} {w}" for w, n in left.items()) if left else "")
