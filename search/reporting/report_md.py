"""The Markdown text of a search report, from the search read back from MLflow (no computation of scores here)."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from search.common import contract
from search.common.runs_table import SearchRuns, markdown_table
from search.common.trials import best_per, number, rank_trials, tie_break
from search.reporting.importance import MIN_PARAM_TRIALS, Importance
from search.reporting.plots import FAMILY_ORDER, ordered

SETTINGS = tuple(p for p in contract.SEARCH_PARAMS if p not in (contract.OBJECTIVES, contract.POINTS_TO_EVALUATE))
MAX_ROWS = 50
VERSIONS = ("python", "ray", "mlflow", "optuna", "scikit-learn", "pandas", "numpy")
SCORES = (*contract.SCORES, *contract.COSTS)
TITLES = {
    "model_comparison.png": "Model comparison",
    "all_runs_comparison.png": "All trials",
    "optimization_history.png": "Optimisation history",
    "param_importance.png": "Parameter importance",
    "parallel_coordinates.png": "Parallel coordinates of the best trials",
    "pareto_front.png": "Accuracy against serving cost",
}
FIGURES = {
    "model_comparison.png": "The best trial of each model family (ranked by the rule above): its validation accuracy "
    "(circle) and macro F1 (diamond), means over the cross-validation folds of the development part. The axis is "
    "zoomed, so a difference of one validation row is visible.",
    "all_runs_comparison.png": "Every trial's validation score, grouped by feature set and coloured by model family. "
    "Hollow markers are trials stopped before their last fold; crosses in the bottom strip are trials with no score "
    "(failed, or stopped by the search's end before their first).",
    "optimization_history.png": "Each trial's score in the order the searcher proposed it (tag `trial_index`), and "
    "the best score reached so far. With several trials in parallel the searcher proposes a trial before the "
    "results of the running ones are back.",
    "param_importance.png": "",  # written from the Importance
    "parallel_coordinates.png": "Top: the best trials, one line each, across feature set, model family, fit time and "
    "scores (thick: the best trial). Bottom: every completed trial of the best model family across its own "
    "hyperparameters, coloured by score (left out when that family has fewer than two completed trials). Numeric "
    "axes spanning more than a factor of 20 are logarithmic, marked `(log)` and ticked at powers of ten.",
    "pareto_front.png": "Accuracy against serving cost: each completed trial's score and the CPU milliseconds "
    "its Pipeline took to predict 1,000 rows; the step line joins the trials no other trial beats on both, the "
    "ringed one is the released champion when it came from this search.",
}


def cell(value: Any, digits: int = 4) -> str:
    """A Markdown table cell: floats rounded, missing as an em dash, pipes escaped."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 1e-3 or value == 0 else f"{value:.3g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A Markdown table."""
    return markdown_table(headers, [[cell(v) for v in row] for row in rows])


def _short(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return str(value) if number.is_integer() else f"{number:.4g}"


def _params(row: dict[str, Any], hyperparams: list[str]) -> str:
    """The trial's hyperparameters, floats to 4 significant digits (the CSV has MLflow's exact values)."""
    return ", ".join(f"`{k}={_short(row[k])}`" for k in hyperparams if row.get(k) is not None) or "—"


def _best_table(search: SearchRuns, column: str, label: str) -> str:
    frame, metric = search.trials, search.metric
    regression = contract.task_of_metric(metric) == contract.REGRESSION
    shown = (metric, contract.partner_of(metric)) if regression else (contract.VAL_ACCURACY, contract.VAL_F1)
    rows = []
    bests = best_per(frame, column, metric)
    order = [str(r[column]) for r in rank_trials([b for b in bests.values() if b], metric)]
    for value in order + [v for v, b in bests.items() if b is None]:
        best = bests[value]
        counts = frame[frame[column] == value][contract.OUTCOME].value_counts()
        size = " / ".join(str(counts.get(word, 0)) for word in contract.OUTCOMES)  # completed / stopped / failed
        if best is None:
            rows.append([value, size, "no completed trial", None, None, None, None])
            continue
        other = contract.FEATURE_SET if column == contract.MODEL else contract.MODEL
        trial = f"`{best['run_name']}` (#{best[contract.TRIAL_INDEX]})"
        rows.append([value, size, trial, best[other], *(best[m] for m in shown), _params(best, search.hyperparams)])
    other_label = "feature set" if column == contract.MODEL else contract.MODEL
    headers = [label, "completed / stopped / failed", "best trial", other_label, *shown, "params"]
    return table(headers, rows)


def _settings(search: SearchRuns) -> list[str]:
    params, tags, info = search.parent.data.params, search.parent.data.tags, search.parent.info
    start = datetime.fromtimestamp(info.start_time / 1000, UTC) if info.start_time else None
    took = f"{(info.end_time - info.start_time) / 1000:.1f} s" if info.end_time and info.start_time else "—"
    until_budget = params.get(contract.NUM_SAMPLES) == str(contract.UNTIL_BUDGET)  # --time-budget alone
    shown = {**params, contract.NUM_SAMPLES: "as many as the time budget allows"} if until_budget else params
    rows = [[k, shown[k]] for k in SETTINGS if k in params]
    rows += [["status", info.status], ["started (UTC)", f"{start:%Y-%m-%d %H:%M:%S}" if start else "—"]]
    rows += [
        ["duration", took],
        ["git commit", f"{tags.get(contract.GIT_COMMIT, '—')} (dirty: {tags.get(contract.GIT_DIRTY)})"],
    ]
    rows += [["dataset digest", tags.get(contract.DATASET_DIGEST, "—")]]
    if tags.get(contract.STOP_REASON):
        rows += [["stop reason", tags[contract.STOP_REASON]]]
    if tags.get(contract.WARM_START_FROM):
        rows += [["warm start", f"{tags.get(contract.WARM_START_TRIALS)} trials of {tags[contract.WARM_START_FROM]}"]]
    if tags.get(contract.WARM_START_BEST):
        rows += [["run first", f"their best, trial {tags[contract.WARM_START_BEST]}"]]
    if tags.get(contract.ENQUEUED_FROM):
        rows += [["run first", f"the best {tags.get(contract.ENQUEUED_TRIALS)} of {tags[contract.ENQUEUED_FROM]}"]]
    rows += [["versions", ", ".join(f"{k} {tags[f'version.{k}']}" for k in VERSIONS if f"version.{k}" in tags)]]
    counts = search.trials[contract.OUTCOME].value_counts()
    n = len(search.trials)
    size = (
        f"**{n} trial runs**: {counts.get(contract.COMPLETED, 0)} completed, "
        f"{counts.get(contract.STOPPED, 0)} stopped early, {counts.get(contract.FAILED, 0)} failed"
    )
    size += "".join(
        f", {counts[k]} {k.replace('_', ' ')}" for k in (contract.UNFINISHED, contract.NO_RESULT) if counts.get(k)
    )
    if params.get(contract.NUM_SAMPLES, "").isdigit() and int(params[contract.NUM_SAMPLES]) != n and not until_budget:
        size += f" ({params[contract.NUM_SAMPLES]} requested)"
    return ["## Settings and size", "", table(["setting", "value"], rows), "", size + ".", ""]


def _time(search: SearchRuns) -> list[str]:
    """Where the search's wall time went: fitting folds, the trials' other work, and what was outside any trial."""
    info, params, frame = search.parent.info, search.parent.data.params, search.trials
    if not (info.end_time and info.start_time) or frame.empty:
        return []
    wall = (info.end_time - info.start_time) / 1000
    slots = int(float(params.get(contract.MAX_CONCURRENT) or 1))
    if contract.TRIAL_TIME_S not in frame or contract.FIT_TIME_S not in frame:
        return []  # a search recorded before trials timed themselves
    timed = frame[frame[contract.TRIAL_TIME_S].notna()]  # a trial cut in flight reported no time of its own
    folds = timed[contract.FOLDS_DONE].fillna(0).clip(lower=1)  # a row sample's trial: its last fit's time
    fitting = float((timed[contract.FIT_TIME_S].fillna(0) * folds).sum())
    in_trials, capacity = float(timed[contract.TRIAL_TIME_S].sum()), wall * slots

    def share(seconds: float) -> str:
        return "—" if math.isnan(seconds) else f"{seconds:.1f} s ({seconds / capacity:.0%})"

    rows = []
    if params.get(contract.TIME_BUDGET):
        rows.append(["time budget (--time-budget)", f"{float(params[contract.TIME_BUDGET]):.0f} s"])
    rows += [["the parent run's wall time", f"{wall:.1f} s"], ["trial slots (max_concurrent)", slots],
             ["slot time (wall × slots)", f"{capacity:.1f} s"], ["fitting folds", share(fitting)],
             ["the trials' other work (predicting, scoring, keeping folds)", share(in_trials - fitting)],
             ["outside any trial (starting workers, bookkeeping, waiting)", share(capacity - in_trials)]]  # fmt: skip
    note = (f"Trial times are each trial's last attempt in its worker (`trial_time_s`), of the {len(timed)} trials "
            "that ended with a result; fitting is `fit_time_s` × `folds_done`. Trials cut in flight by the search's "
            "end are counted outside.")  # fmt: skip
    return ["## Where the time went", "", table(["", "time"], rows), "", note, ""]


def _best(search: SearchRuns) -> list[str]:
    top = rank_trials(search.trials, search.metric)
    best = top[0]
    ties = sum(1 for r in top if r[search.metric] == best[search.metric])
    lines = ["## Best trial overall", ""]
    better = "lower" if contract.mode_of(search.metric) == "min" else "higher"
    lines.append(f"Ranked with `search.common.trials.rank_trials`, the release's rule: {better} "
                 f"`{search.metric}`, then {tie_break(search.metric)}; only trials that ran every fold are "
                 "eligible.")  # fmt: skip
    if ties > 1:
        lines[-1] += f" {ties} trials reached {search.metric} {best[search.metric]:.4f}; the tie-break chose this one."
    text = best.get(contract.TEXT_FEATURES)  # a table with many-valued text: what the trial made of it
    lines += ["", table(["", "value"], [["run", f"`{best['run_name']}` (`{best['run_id']}`)"],
                                         [contract.TRIAL_INDEX, best[contract.TRIAL_INDEX]],
                                         [contract.MODEL, best[contract.MODEL]],
                                         ["feature set", best[contract.FEATURE_SET]]]
                        + [["text features", text]] * isinstance(text, str)
                        + [[m, best.get(m)] for m in SCORES if _present(best.get(m))]), ""]  # fmt: skip
    lines += [f"Parameters: {_params(best, search.hyperparams)}.", ""]
    tagged = search.parent.data.tags.get(contract.BEST_TRIAL_RUN_ID)
    if tagged and tagged != best["run_id"]:
        lines += [f"**Note:** the parent run's tag `best_trial_run_id` names `{tagged}`, not this trial.", ""]
    return lines


def _present(value: Any) -> bool:
    """Whether a score was recorded (a classifier has no RMSE, a regressor no accuracy)."""
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def _columns(search: SearchRuns) -> list[str]:
    """The table's columns as the search saw them, for a table that needed preparing."""
    from trainables.columns import Roles

    recorded = search.parent.data.tags.get(contract.COLUMN_ROLES)
    if not recorded:
        return []
    roles = Roles.from_json(recorded)
    if roles.plain:
        return []
    rows = [[col.name, col.role, col.missing, col.treatment] for col in roles.columns]
    kept = len(roles.kept)
    return ["## Columns", "", f"{kept} of {len(rows)} columns reach the models, prepared inside each trial's Pipeline:",
            "", table(["column", "role", "missing", "what is done"], rows), ""]  # fmt: skip


def folds_done(row) -> str:
    """How far a trial went: folds of all, or the row sample it stopped on."""
    done = row.get(contract.FOLDS_DONE)
    if 0 < number(done) < 1:  # a row sample's share (trainables/fidelity.py)
        return f"1/{round(1 / done)} of the rows"
    return f"{cell(done, 0)} / {row.get(contract.CV_FOLDS) or '—'}"


def _problems(search: SearchRuns) -> list[str]:
    frame = search.trials
    bad = frame[frame[contract.OUTCOME] != contract.COMPLETED]
    lines = ["## Failed, stopped and unfinished trials", ""]
    if bad.empty:
        return [*lines, "None: every trial ran every fold.", ""]
    rows = [[r[contract.TRIAL_INDEX], f"`{r['run_name']}`", r[contract.OUTCOME], r["status"], r[contract.MODEL],
             r[contract.FEATURE_SET], folds_done(r),
             r.get(contract.ERROR)]
            for _, r in bad.iterrows()]  # fmt: skip
    headers = [contract.TRIAL_INDEX, "run", contract.OUTCOME, "MLflow status", contract.MODEL, "feature set",
               "folds done", contract.ERROR]  # fmt: skip
    more = [f"… and {len(rows) - MAX_ROWS} more in model_summary.csv.", ""] if len(rows) > MAX_ROWS else []
    note = "Failed trials have no score and are never counted as zero."
    return [*lines, note, "", table(headers, rows[:MAX_ROWS]), "", *more]


def _champion(champion: dict[str, Any] | None, name: str, search_id: str) -> list[str]:
    lines = ["## Released champion", ""]
    if champion is None:
        return [*lines, f"None yet: registered model `{name}` has no version with alias `champion`.", ""]
    theirs = champion.get(contract.SEARCH_ID)
    origin = "this search" if theirs == search_id else f"search `{theirs}`"
    lines.append(f"Version {champion['version']} of `{name}` (alias `champion`): trial run "
                 f"`{champion.get(contract.SOURCE_RUN_ID) or '—'}` of {origin}, retrained and scored on the held-out "
                 f"test part in release run `{champion.get('run_id')}`.")  # fmt: skip
    metrics = champion.get("metrics", {})
    rows = [[k, metrics[k]] for k in sorted(metrics)]
    lines += ["", table(["test metric (held-out test part)", "value"], rows) if rows else "No test metrics recorded."]
    return [*lines, ""]


def importance_text(importance: Importance) -> str:
    """What `param_importance.png` draws: a panel over all trials, then one per model family with its own n."""
    families = ordered(importance.per_family, FAMILY_ORDER)  # the figure's order
    shown = [f for f in families if importance.per_family[f].values]
    left_out = [f for f in families if not importance.per_family[f].values]
    if not importance.values and not shown:
        return f"No importance computed: {importance.note}."
    method = importance.method.split(" (")[0]
    text = (
        f"Which choices mattered for reaching the best scores: {method} on the completed trials, rebuilt as an Optuna "
        "study with the search space's distributions. Each panel is computed over its own trials, so its shares sum "
        "to 1. "
    )
    if importance.values:
        text += (
            f"The first panel weighs model family and feature set over all n={importance.n_trials} completed trials."
        )
    else:
        text += f"No panel over all trials: {importance.note}."
    if shown:
        sizes = ", ".join(f"{f} (n={importance.per_family[f].n_trials})" for f in shown)
        text += (
            " Then one panel per model family weighs its own hyperparameters and feature set over that family's "
            f"completed trials only: {sizes}."
        )
    if left_out:
        text += " No panel for " + "; ".join(f"{f} ({importance.per_family[f].note})" for f in left_out) + "."
    panels = [("all families", importance)] if importance.values else []
    panels += [(f, importance.per_family[f]) for f in shown]
    zero = [f"`{name}` ({where})" for where, imp in panels for name, value in imp.values.items() if value <= 0]
    if zero:
        text += " Scored 0 (no effect seen among that panel's trials): " + ", ".join(zero) + "."
    text += (
        " A hyperparameter only some trials have (an MLP's third layer) is weighed over those trials alone, and ranked"
        f" only when at least {MIN_PARAM_TRIALS} have it."
    )
    fewer = [f"`{name}` (n={k} of {imp.n_trials})" for _, imp in panels for name, k in imp.having.items()]
    if fewer:
        text += " Weighed over fewer trials than their panel: " + ", ".join(fewer) + "."
    every = [("all families", importance), *((f, importance.per_family[f]) for f in families)]
    unranked = [f"`{name}` ({where}: {k} trial(s))" for where, imp in every for name, k in imp.unranked.items()]
    if unranked:
        text += " Not ranked, too few trials have them: " + ", ".join(unranked) + "."
    return text + " With few trials in a panel its estimate is rough."


REGRESSION_FIGURES = {  # what differs for a regression search: errors, not accuracy
    "model_comparison.png": "The best trial of each model family (ranked by the rule above): its {score} (circle) "
    "and {partner} (diamond), means over the cross-validation folds of the development part, in the target's units.",
    "pareto_front.png": "The search's metric against serving cost: each completed trial's {score} and the CPU "
    "milliseconds its Pipeline took to predict 1,000 rows; the step line joins the trials no other trial beats on "
    "both, the ringed one is the released champion when it came from this search.",
}


def _figures(importance: Importance, drawn: set[str], metric: str = contract.VAL_ACCURACY) -> list[str]:
    lines = ["## Figures", ""]
    texts = {**FIGURES, "param_importance.png": importance_text(importance)}
    if contract.task_of_metric(metric) == contract.REGRESSION:
        words = {"score": metric, "partner": contract.partner_of(metric)}
        texts |= {name: text.format(**words) for name, text in REGRESSION_FIGURES.items()}
    for name, text in texts.items():
        if name not in drawn:  # a figure with nothing to show is left out
            continue
        title = TITLES[name]
        if name == "pareto_front.png" and metric != contract.VAL_ACCURACY:
            title = "Score against serving cost"
        lines += [f"### {title}", "", text, "", f"![{title}]({name})", ""]
    return lines


def render(
    search: SearchRuns,
    importance: Importance,
    champion: dict | None,
    model_name: str,
    source: str,
    drawn: set[str] | None = None,
) -> str:
    """The whole report as Markdown; `source`: the tracking URI without credentials; `drawn`: the figures written."""
    sid, exp = search.search_id, search.parent.info.experiment_id
    lines = [f"# Search `{sid}`", ""]
    lines += [f"Read from MLflow at `{source}` (experiment id {exp}, parent run `{search.parent.info.run_id}`) on "
              f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Every trial is in [model_summary.csv](model_summary.csv).",
              ""]  # fmt: skip
    lines += _settings(search) + _time(search) + _columns(search) + _best(search)
    lines += ["## Best trial per model family", "", _best_table(search, contract.MODEL, "model family"), ""]
    lines += ["## Best trial per feature set", "", _best_table(search, contract.FEATURE_SET, "feature set"), ""]
    lines += _problems(search) + _champion(champion, model_name, sid)
    lines += _figures(importance, set(FIGURES) if drawn is None else drawn, search.metric)
    return "\n".join(lines)
