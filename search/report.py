"""Write a search's report from MLflow alone: Markdown, figures and a per-trial CSV, also logged to its parent run.

python search/report.py [--experiment iris_classification] [--search-id ID] [--tracking-uri URI] [--out reports/]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from search.common.connect import check_tracking_uri, public_uri

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from search.common.runs_table import SearchRuns

DEFAULT_EXPERIMENT = "iris_classification"
FILES = ("experiment_report.md", "model_summary.csv", "model_comparison.png", "all_runs_comparison.png",
         "optimization_history.png", "param_importance.png", "parallel_coordinates.png")  # fmt: skip


def default_uri() -> str:
    """`MLFLOW_TRACKING_URI` from the environment, else MLflow's own default `sqlite:///mlflow.db`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db"


def connect(uri: str) -> MlflowClient:
    """A client for `uri`; `ReportError` when it cannot be read."""
    from mlflow.tracking import MlflowClient

    from search.common.runs_table import ReportError

    try:
        check_tracking_uri(uri, timeout=4.0, must_exist=True)
    except ConnectionError as exc:
        raise ReportError(str(exc)) from None
    return MlflowClient(tracking_uri=uri)


def find_champion(client: MlflowClient, name: str) -> dict[str, Any] | None:
    """The version behind alias `champion` with its test metrics (version tags, then its run), or None."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None
    found: dict[str, Any] = {"version": version.version, "run_id": version.run_id, "metrics": {}}
    tags = dict(version.tags or {})
    run_tags: dict[str, str] = {}
    if version.run_id:
        try:
            run = client.get_run(version.run_id)
            run_tags = run.data.tags
            found["metrics"].update({k: v for k, v in run.data.metrics.items() if k.startswith("test_")})
        except MlflowException:
            pass
    for key, value in tags.items():
        if key.startswith("test_"):
            try:
                found["metrics"].setdefault(key, float(value))
            except ValueError:
                pass
    found["search_id"] = tags.get("search_id") or run_tags.get("search_id")
    found["source_run_id"] = tags.get("source_run_id") or run_tags.get("source_run_id")
    return found


def _figures(search: SearchRuns, out: Path):
    from search.reporting import plots, plots_params
    from search.reporting.importance import param_importance, rebuild_study

    frame, metric = search.trials, search.metric
    params = search.parent.data.params
    choices = {"model": params.get("models", "").split(","), "feature_set": params.get("feature_sets", "").split(",")}
    choices = {k: [c for c in v if c] for k, v in choices.items()}
    importance = param_importance(rebuild_study(frame, search.hyperparams, metric, choices))
    figures = {
        "model_comparison.png": plots.model_comparison(frame, metric),
        "all_runs_comparison.png": plots.all_runs_comparison(frame, metric),
        "optimization_history.png": plots.optimization_history(frame, metric),
        "param_importance.png": plots_params.param_importance(importance),
        "parallel_coordinates.png": plots_params.parallel_coordinates(frame, search.hyperparams, metric),
    }
    for name, fig in figures.items():
        plots.save(fig, out / name)
    return importance


def write_report(
    client_or_uri: MlflowClient | str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    search_id: str | None = None,
    out: Path | str = Path("reports"),
    *,
    model_name: str | None = None,
    log_to_run: bool = True,
) -> Path:
    """Write the report of `search_id` (default: the experiment's latest search) into `out`; return the .md path.

    Logs the files under `report/` of the search's parent run unless `log_to_run` is False.
    Raises `ReportError` (one-line message) for an unknown experiment or search, a search without a complete
    trial, or an unreachable tracking server.
    """
    from mlflow.tracking import MlflowClient

    from search.common.runs_table import ReportError, load_search, summary_table
    from search.reporting.report_md import render

    uri = client_or_uri if isinstance(client_or_uri, str) else None
    client = client_or_uri if isinstance(client_or_uri, MlflowClient) else connect(uri or default_uri())
    search = load_search(client, experiment, search_id)
    counts = search.trials["outcome"].value_counts().to_dict() if len(search.trials) else {}
    if not counts.get("complete"):
        what = ", ".join(f"{n} {k}" for k, n in counts.items()) or "no trial runs"
        raise ReportError(f"search {search.search_id!r} of experiment {experiment!r} has no finished trial ({what})")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary_table(search).to_csv(out / "model_summary.csv", index=False)
    importance = _figures(search, out)
    dataset = search.parent.data.tags.get("dataset") or Path(search.parent.data.params.get("dataset", "iris")).stem
    from search.releasing.registry import default_model_name

    name = model_name or default_model_name(dataset)
    champion = find_champion(client, name)
    source = public_uri(uri or client.tracking_uri)
    (out / FILES[0]).write_text(render(search, importance, champion, name, source), encoding="utf-8")
    if log_to_run:
        for file in FILES:
            client.log_artifact(search.parent.info.run_id, str(out / file), "report")
    return out / FILES[0]


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit code (0 written, 1 nothing to report or MLflow error)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    parser.add_argument("--search-id", help="search to report on (default: the experiment's latest search)")
    parser.add_argument("--tracking-uri", default=None, help="default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db")
    parser.add_argument(
        "--out", type=Path, default=Path("reports"), help="folder for the report files (default: reports/)"
    )
    parser.add_argument(
        "--model-name",
        help="registered model whose champion to show "
        "(default: iris_classification_best_model for Iris, else <dataset>_best_model)",
    )
    parser.add_argument("--no-log-to-run", action="store_true", help="do not log the files to the parent run")
    args = parser.parse_args(argv)
    uri = args.tracking_uri or default_uri()
    try:  # before the slow imports: a dead server is one line within seconds
        check_tracking_uri(uri, timeout=4.0, must_exist=True)
    except ConnectionError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    from mlflow.exceptions import MlflowException

    from search.common.runs_table import ReportError

    try:
        path = write_report(uri, args.experiment, args.search_id, args.out,
                            model_name=args.model_name, log_to_run=not args.no_log_to_run)  # fmt: skip
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 1
    except MlflowException as exc:
        print(f"report: MLflow error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
