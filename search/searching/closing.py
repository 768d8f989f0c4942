"""What a search does once Tune is done: its trials as records, the figures of the best trials, the Pareto front."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from search.common import contract as c
from search.common.figures import save_confusion_matrix, save_predicted_actual
from search.common.trials import Trial, best_per


def trials_of(results, runs: dict[str, tuple[str, int]], ended: bool = False) -> list[Trial]:
    """The Trials of Tune's results with their MLflow run ids; `ended`: the search's end cut those in flight."""
    trials = []
    for result in results:
        metrics = result.metrics or {}
        trial_id = metrics.get(c.TRIAL_ID) or Path(result.path or "").name
        run_id = runs.get(trial_id, ("", -1))[0]
        trial = Trial.from_result(result.config or {}, metrics, bool(result.error), run_id, ended, trial_id=trial_id)
        trials.append(trial)
    return trials


def draw_figures(client, results, trials: list[Trial], metric: str, classes: list) -> None:
    """Log the out-of-fold figure of the best trial of each model family (confusion matrix, or predicted-actual)."""
    numbers = {(r.metrics or {}).get(c.TRIAL_ID): r.metrics for r in results}
    for trial in filter(None, best_per(trials, c.MODEL, metric).values()):
        metrics = numbers.get(trial.trial_id) or {}
        for kind in (c.CONFUSION_MATRIX, c.PREDICTED_ACTUAL):
            if metrics.get(kind) and trial.run_id:
                _log_figure(client, trial, kind, json.loads(metrics[kind]), classes)


def _log_figure(client, trial: Trial, kind: str, numbers, classes: list) -> None:
    folds = trial.params.get(c.CV_FOLDS, "?")
    with tempfile.TemporaryDirectory() as tmp:
        if kind == c.PREDICTED_ACTUAL:
            title = f"trial {trial.run_name}: a sample of the out-of-fold predictions of {folds}-fold CV"
            path = Path(tmp) / c.PREDICTED_ACTUAL_PNG
            path = save_predicted_actual(numbers["actual"], numbers["predicted"], path, title)
        else:
            title = f"trial {trial.run_name}\nout-of-fold predictions of {folds}-fold CV"
            path = save_confusion_matrix(numbers, classes, Path(tmp) / c.CONFUSION_MATRIX_PNG, title)
        client.log_artifact(trial.run_id, str(path))


def mark_front(client, search_id: str, parent_run_id: str, objectives: str, rows: list[Trial]) -> list[Trial]:
    """Tag the Pareto-optimal completed trials; the front as a table in the console and on the parent run."""
    from search.common.pareto import front, front_table, parse_objectives

    parsed = parse_objectives(objectives)
    on_front = front(rows, parsed)
    for trial in on_front:
        client.set_tag(trial.run_id, c.PARETO_FRONT, "true")
    print(f"\nPareto front of search {search_id} ({len(on_front)} of {len(rows)} trials):")
    print(front_table(on_front, parsed))
    client.log_text(parent_run_id, front_table(on_front, parsed, markdown=True) + "\n", "pareto_front.md")
    return on_front
