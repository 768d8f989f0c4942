"""A search's report from MLflow alone: Markdown, figures and a per-trial CSV, also logged to its parent run."""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.common import contract
from search.common.connect import DEFAULT_TRACKING_URI, check_tracking_uri, public_uri
from search.common.errors import NothingToDo
from search.common.lookup import experiment_of
from search.common.trials import number

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from search.common.runs_table import SearchRuns

FILES = ("experiment_report.md", "model_summary.csv", "model_comparison.png", "all_runs_comparison.png",
         "optimization_history.png", "param_importance.png", "parallel_coordinates.png",
         "pareto_front.png")  # fmt: skip


def default_uri() -> str:
    """`MLFLOW_TRACKING_URI` from the environment, else the project's default store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def connect(uri: str) -> MlflowClient:
    """A client for `uri`; `Unreachable` when it cannot be read."""
    from mlflow.tracking import MlflowClient

    check_tracking_uri(uri, timeout=4.0, must_exist=True)
    return MlflowClient(tracking_uri=uri)


def find_champion(client: MlflowClient, name: str) -> dict[str, Any] | None:
    """The version behind alias `champion` with its test metrics (version tags, then its run), or None."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, contract.ALIAS)
    except MlflowException:
        return None
    found: dict[str, Any] = {"version": version.version, "run_id": version.run_id, "metrics": {}}
    tags = dict(version.tags or {})
    run_tags: dict[str, str] = {}
    if version.run_id:
        with contextlib.suppress(MlflowException):
            run = client.get_run(version.run_id)
            run_tags = run.data.tags
            found["metrics"].update({k: v for k, v in run.data.metrics.items() if k in contract.TEST_SCORES})
    for key, value in tags.items():
        if key in contract.TEST_SCORES and not math.isnan(number(value)):
            found["metrics"].setdefault(key, number(value))
    found[contract.SEARCH_ID] = tags.get(contract.SEARCH_ID) or run_tags.get(contract.SEARCH_ID)
    found[contract.SOURCE_RUN_ID] = tags.get(contract.SOURCE_RUN_ID) or run_tags.get(contract.SOURCE_RUN_ID)
    return found


def _figures(search: SearchRuns, out: Path, released: str | None):
    from search.common.pareto import parse_objectives
    from search.reporting import plots, plots_params
    from search.reporting.front_plot import front_figure
    from search.reporting.importance import param_importance, rebuild_study

    frame, metric = search.trials, search.metric
    params = search.parent.data.params
    choices = {
        contract.MODEL: params.get(contract.MODELS, "").split(","),
        contract.FEATURE_SET: params.get(contract.FEATURE_SETS, "").split(","),
    }
    choices = {k: [c for c in v if c] for k, v in choices.items()}
    importance = param_importance(rebuild_study(frame, search.hyperparams, metric, choices))
    figures = {
        "model_comparison.png": plots.model_comparison(frame, metric),
        "all_runs_comparison.png": plots.all_runs_comparison(frame, metric),
        "optimization_history.png": plots.optimization_history(frame, metric),
        "param_importance.png": plots_params.param_importance(importance),
        "parallel_coordinates.png": plots_params.parallel_coordinates(frame, search.hyperparams, metric),
    }
    done = frame[frame[contract.OUTCOME] == contract.COMPLETED]
    if contract.PREDICT_MS in done and done[contract.PREDICT_MS].notna().any():  # trials that recorded their cost
        objectives = parse_objectives(f"{metric},predict_ms")
        figures["pareto_front.png"] = front_figure(frame, objectives, released=released)
    for name, fig in figures.items():
        plots.save(fig, out / name)
    return importance


def write_report(
    client_or_uri: MlflowClient | str | None = None,
    experiment: str | None = None,
    search_id: str | None = None,
    out: Path | str | None = None,
    *,
    model_name: str | None = None,
    log_to_run: bool = True,
) -> Path:
    """Write the report of `search_id` (default: the latest, of `experiment` or any) into `out` (default:
    `reports/<search_id>/`) and log it to the search's parent run unless `log_to_run` is False; the .md path."""
    from mlflow.tracking import MlflowClient

    from search.common.runs_table import load_search, summary_table
    from search.reporting.report_md import render

    uri = client_or_uri if isinstance(client_or_uri, str) else None
    client = client_or_uri if isinstance(client_or_uri, MlflowClient) else connect(uri or default_uri())
    search = load_search(client, experiment, search_id)
    experiment = experiment_of(client, search.parent)
    counts = search.trials[contract.OUTCOME].value_counts().to_dict() if len(search.trials) else {}
    if not counts.get(contract.COMPLETED):
        what = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no trial runs"
        raise NothingToDo(f"search {search.search_id!r} of experiment {experiment!r} has no finished trial ({what})")
    print(f"report of search {search.search_id} (experiment {experiment!r})")
    out = Path(out) if out is not None else Path("reports") / search.search_id
    out.mkdir(parents=True, exist_ok=True)
    summary_table(search).to_csv(out / "model_summary.csv", index=False)
    name = model_name or contract.model_name(experiment)
    champion = find_champion(client, name)
    mine = champion is not None and champion.get(contract.SEARCH_ID) == search.search_id
    importance = _figures(search, out, champion[contract.SOURCE_RUN_ID] if mine else None)
    source = public_uri(uri or client.tracking_uri)
    drawn = {f for f in FILES if (out / f).exists()}
    (out / FILES[0]).write_text(render(search, importance, champion, name, source, drawn), encoding="utf-8")
    if log_to_run:
        for file in FILES:
            if (out / file).exists():
                client.log_artifact(search.parent.info.run_id, str(out / file), "report")
    return out / FILES[0]
