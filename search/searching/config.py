"""The search's settings as plain data, and the command line that fills them."""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import asdict, dataclass, field

from search.common.cli import OneLineParser, check_tracking_uri_form
from search.common.connect import DEFAULT_TRACKING_URI
from search.common.contract import CLASSIFICATION, IMBALANCE, MODEL, RANK_METRICS, REGRESSION, TASKS, UNTIL_BUDGET
from search.common.errors import UsageError
from trainables.data import recorded_path
from trainables.features import FEATURE_SETS
from trainables.fidelity import DEFAULT_FOLDS, HOLDOUT_ROWS, SAMPLED_ROWS
from trainables.models import ALL_MODELS, MODEL_FAMILIES
from trainables.space import SearchSpace
from trainables.task import AUTO

SCHEDULERS = (AUTO, "fifo", "asha")
MAX_SEED = 2**32 - 1  # what NumPy, scikit-learn and Optuna take as a seed


@dataclass
class SearchConfig:
    """Everything that decides what a search does; recorded on the search's parent run."""

    dataset: str = "iris"
    target: str | None = None
    task: str = AUTO  # auto (read off the target), classification or regression; prepare() sets the one decided
    task_reason: str = "--task"  # why (trainables/task.py)
    models: list[str] = field(default_factory=lambda: list(MODEL_FAMILIES))
    feature_sets: list[str] = field(default_factory=lambda: list(FEATURE_SETS))
    num_samples: int = 30
    max_concurrent: int | None = None
    seed: int = 42
    cv_folds: int | None = None  # None: 5, or one holdout split on a big table (prepare() sets the one decided)
    test_size: float = 0.2
    metric: str | None = None  # None: chosen from the data (accuracy, balanced accuracy for rare classes, RMSE)
    metric_reason: str = "--metric"  # why the search ranks by its metric (driver.choose_metric)
    scheduler: str = AUTO  # auto: asha where a big table is sampled first (prepare() sets the one decided)
    objectives: str | None = None  # e.g. "val_accuracy,predict_ms": a multi-objective search
    address: str | None = None
    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str | None = None
    storage_path: str | None = None
    report: bool = False
    resume: str | None = None
    points_to_evaluate: list[dict] | None = None
    warm_start: str = "auto"  # auto (earlier searches of the same fingerprint), off, or a search id
    plateau: int | None = None  # end after this many completed trials without a gain above min_delta
    time_budget: float | None = None  # seconds: no trial starts after them, the running ones are stopped
    min_delta: float = 0.001
    categorical: list[str] | None = None  # columns to treat as categories whatever their type
    drop: list[str] | None = None  # columns the models never see
    defaults_first: bool = True  # run each family at its scikit-learn defaults first, when nothing is known yet
    verbose: bool = False  # Tune's status table instead of the project's progress line

    def as_dict(self) -> dict:
        """The settings as a JSON-ready dict."""
        return asdict(self)


def _choices(kind: str, known: dict) -> callable:
    def parse(text: str) -> list[str]:
        names = [n.strip() for n in text.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise argparse.ArgumentTypeError(f"unknown {kind} {unknown or text!r}: choose from {','.join(known)}")
        return names

    return parse


def _duration(text: str) -> float:
    from search.searching.time_budget import parse_duration

    try:
        return parse_duration(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--time-budget ")) from None


def _columns(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"no column named in {text!r}: give comma-separated column names")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The `search/run.py` command line."""
    p = OneLineParser(
        "run",
        description="Hyperparameter search over model family x feature set x hyperparameters on Ray Tune + Optuna, "
        "every trial tracked in MLflow.",
    )
    d = SearchConfig()
    p.add_argument(
        "--address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster (default: RAY_ADDRESS, else a local Ray)"
    )
    p.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI", d.tracking_uri),
        help=f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})",
    )
    p.add_argument("--experiment", help="MLflow experiment (default: <dataset>_<task>)")
    p.add_argument(
        "--dataset",
        default=d.dataset,
        help="iris, wine, breast_cancer, digits, diabetes (a number to predict), or a path to a CSV or Parquet file",
    )
    p.add_argument("--target", help="the column to predict, of a table file")
    p.add_argument(
        "--task",
        choices=(AUTO, *TASKS),
        default=d.task,
        help="auto: regression for a numeric target with many distinct values, else classification",
    )
    p.add_argument(
        "--models",
        type=_choices(MODEL, dict.fromkeys(ALL_MODELS)),
        default=d.models,
        help=f"comma-separated (default: all, {', '.join(MODEL_FAMILIES)}; for regression linear is a ridge "
        "regression and stands for logistic_regression)",
    )
    p.add_argument(
        "--feature-sets",
        type=_choices("feature set", FEATURE_SETS),
        default=d.feature_sets,
        help=f"comma-separated (default: all, {', '.join(FEATURE_SETS)})",
    )
    p.add_argument(
        "--num-samples",
        type=int,
        help=f"number of trials (default: {d.num_samples}; with --time-budget alone, as many as fit in the budget)",
    )
    p.add_argument("--max-concurrent", type=int, help="trials at once (default: the cluster's CPUs)")
    p.add_argument("--seed", type=int, default=d.seed, help="seeds the split, the folds, the models and the sampler")
    p.add_argument(
        "--cv-folds",
        type=int,
        help=f"folds of the cross-validation of each trial; 1: one holdout split (default: 5, or 1 from "
        f"{HOLDOUT_ROWS:,} rows)",
    )
    p.add_argument("--test-size", type=float, default=d.test_size, help="held-out share of the data")
    p.add_argument(
        "--metric",
        choices=RANK_METRICS,
        help="what the search optimises (default: val_accuracy, or val_balanced_accuracy when the smallest class is "
        f"{IMBALANCE:g}x rarer than the largest; val_rmse for regression)",
    )
    p.add_argument(
        "--scheduler",
        choices=SCHEDULERS,
        default=d.scheduler,
        help="asha: stop trailing trials after a row sample or a fold; fifo: every trial runs every fold "
        f"(default auto: asha from {SAMPLED_ROWS:,} rows, where configurations are first scored on row samples)",
    )
    p.add_argument(
        "--objectives",
        help="several objectives, e.g. val_accuracy,predict_ms: scores maximised, predict_ms, model_bytes and "
        "fit_time_s minimised; the search ends by tagging its Pareto front",
    )
    p.add_argument(
        "--storage-path",
        default=os.environ.get("TUNE_STORAGE_PATH"),
        help="Tune's results folder, seen by every node (default: TUNE_STORAGE_PATH, else ./ray_results)",
    )
    p.add_argument("--report", action="store_true", help="write the report (reports/<search_id>/) at the end")
    p.add_argument("--resume", metavar="SEARCH_ID", help="continue an interrupted search with its recorded settings")
    p.add_argument(
        "--points-to-evaluate",
        metavar="FILE.json",
        help="configurations to try first, before the sampler's own: a JSON list of trials' params as MLflow shows "
        'them, e.g. [{"model": "svm", "feature_set": "basic", "C": 1.0, "kernel": "rbf", "gamma": 0.1}]',
    )
    p.add_argument(
        "--warm-start",
        default=d.warm_start,
        metavar="auto|off|SEARCH_ID",
        help="start from the trials of earlier searches on the same data, split and folds (auto), of one search "
        "(its id), or from nothing (off)",
    )
    p.add_argument(
        "--plateau",
        type=int,
        metavar="N",
        help="end the search once N completed trials in a row brought no gain above --min-delta",
    )
    p.add_argument("--min-delta", type=float, default=d.min_delta, help="the gain --plateau counts")
    p.add_argument(
        "--time-budget",
        type=_duration,
        metavar="DURATION",
        help="wall time for the whole search, e.g. 90s, 10m, 2h: no trial starts after it and the running ones are "
        "stopped; with --num-samples and --plateau, the first limit reached ends the search",
    )
    p.add_argument("--categorical", type=_columns, metavar="COLS", help="comma-separated columns taken as categories")
    p.add_argument("--drop", type=_columns, metavar="COLS", help="comma-separated columns the models never see")
    p.add_argument(
        "--no-defaults-first",
        dest="defaults_first",
        action="store_false",
        help="do not run each family at its scikit-learn defaults first (they run when no earlier trial is known)",
    )
    p.add_argument("--verbose", action="store_true", help="show Tune's status table instead of the progress line")
    return p


def parse_args(argv: list[str] | None = None) -> SearchConfig:
    """Parse and check the command line; UsageError names a setting that cannot work."""
    args = build_parser().parse_args(argv)
    if args.num_samples is None:
        args.num_samples = UNTIL_BUDGET if args.time_budget and not args.resume else SearchConfig.num_samples
    config = SearchConfig(**vars(args))
    if config.points_to_evaluate is not None:
        config.points_to_evaluate = read_points(config.points_to_evaluate)
    if config.dataset.endswith((".csv", ".parquet", ".pq")) or os.path.sep in config.dataset:
        config.dataset = recorded_path(config.dataset)
    validate(config)
    return config


def read_points(path: str) -> list[dict]:
    """The configurations a `--points-to-evaluate` file lists."""
    try:
        points = json.loads(open(path).read())
    except OSError as exc:
        raise UsageError(f"--points-to-evaluate {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"--points-to-evaluate {path} is not JSON ({exc}): give a list of objects") from None
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise UsageError(f"--points-to-evaluate {path} must hold a JSON list of objects, one per configuration")
    return points


def validate(config: SearchConfig) -> None:
    """Refuse settings that cannot work, before anything starts."""
    check_tracking_uri_form(config.tracking_uri)
    if config.num_samples < 1:
        raise UsageError(f"--num-samples is {config.num_samples}: a search needs at least 1 trial")
    if config.cv_folds is not None and config.cv_folds < 1:
        raise UsageError(f"--cv-folds is {config.cv_folds}: give 2 or more folds, or 1 for one holdout split")
    if config.max_concurrent is not None and config.max_concurrent < 1:
        raise UsageError(f"--max-concurrent is {config.max_concurrent}: give 1 or more")
    if not 0 <= config.seed <= MAX_SEED:
        raise UsageError(f"--seed is {config.seed}: give a whole number from 0 to {MAX_SEED}")
    if not 0 < config.test_size < 1:
        raise UsageError(f"--test-size is {config.test_size}: give a share between 0 and 1, such as 0.2")
    if config.plateau is not None and config.plateau < 1:
        raise UsageError(f"--plateau is {config.plateau}: give a number of trials, 1 or more")
    if not config.min_delta >= 0 or math.isinf(config.min_delta):  # NaN fails the comparison
        raise UsageError(f"--min-delta is {config.min_delta}: give a gain of 0 or more, such as 0.001")
    if config.experiment is not None and not config.experiment.strip():
        raise UsageError("--experiment is empty: give an MLflow experiment name, or leave the flag out")
    if not config.warm_start.strip():
        raise UsageError("--warm-start is empty: give auto, off or a search id")
    if config.objectives:
        from search.common.pareto import parse_objectives

        parse_objectives(config.objectives)
    check_points(config, config.task if config.task != AUTO else CLASSIFICATION)


LINEAR = {CLASSIFICATION: "logistic_regression", REGRESSION: "linear"}  # the linear family's name in each task


def models_for(config: SearchConfig, task: str) -> str | None:
    """Set `config.models` to the families of `task`: every one when the user named none, else those named, the
    linear family under its name in the task; a line to say when a name was read as the other task's."""
    from trainables.models import families

    if config.models == list(MODEL_FAMILIES):  # the default: all of the task's families
        config.models = list(families(task))
        return None
    other = LINEAR[REGRESSION if task == CLASSIFICATION else CLASSIFICATION]
    if other not in config.models:
        return None
    config.models = list(dict.fromkeys(LINEAR[task] if m == other else m for m in config.models))
    return f"model {other} read as {LINEAR[task]}: the linear family of {task}"


def check_points(config: SearchConfig, task: str) -> None:
    """Refuse a `--points-to-evaluate` configuration that does not fit the space of `task`."""
    from trainables.models import families

    models = [m for m in config.models if m in families(task)]
    if not models or not config.points_to_evaluate:
        return
    space = SearchSpace(models, config.feature_sets, config.seed, config.cv_folds or DEFAULT_FOLDS, task, text=True)
    for number, point in enumerate(config.points_to_evaluate or [], 1):
        try:
            space.point(point)
        except ValueError as exc:
            raise UsageError(f"--points-to-evaluate, configuration {number}: {exc}") from None
