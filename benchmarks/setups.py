"""One benchmark setup, run in a fresh process; prints one JSON line: wall time, best score, when trials finished.

    python benchmarks/setups.py project   --dataset iris --trials 200 --tracking-uri http://127.0.0.1:5000
    python benchmarks/setups.py untracked | loop | grid  (same flags)

- project:   `search.searching.driver.run_search` on RAY_ADDRESS if set (a cluster), else on a local Ray it starts
             (`--scheduler asha`: with fold-level early stopping);
- untracked: the same Tuner with no MLflow callback, the price of tracking;
- loop:      a plain sequential Optuna loop over the same space, each trial logged to MLflow (params, metrics);
- grid:      scikit-learn's GridSearchCV(n_jobs=2) over as many configurations, drawn from the same space.

With `--points FILE` (`compare.py --same-configs`) every setup evaluates exactly the configurations listed there,
in that order: the same work for all, so wall times compare the machinery alone.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from contextlib import redirect_stdout

from trainables.features import FEATURE_SETS
from trainables.models import MODEL_FAMILIES
from trainables.space import SearchSpace


def project(args) -> list[tuple[float, float]]:
    """(finish time, val_accuracy) of every completed trial of a real search, read back from MLflow."""
    from mlflow.tracking import MlflowClient

    from search.common.lookup import search_trials
    from search.searching.config import parse_args
    from search.searching.driver import run_search

    argv = ["--tracking-uri", args.tracking_uri, "--experiment", f"bench-{args.dataset}", "--dataset", args.dataset]
    argv += ["--num-samples", str(args.trials), "--seed", str(args.seed), "--max-concurrent", "2"]
    argv += ["--models", args.models, "--feature-sets", args.feature_sets]
    argv += ["--storage-path", args.storage, "--scheduler", args.scheduler, "--warm-start", "off"]  # repeats alike
    if args.points:
        argv += ["--points-to-evaluate", args.points]
    with redirect_stdout(io.StringIO()):
        outcome = run_search(parse_args(argv))
    args.end = time.time()  # reading the results back below is the benchmark's work, not the search's
    trials = search_trials(MlflowClient(args.tracking_uri), outcome.experiment_id, outcome.search_id)
    done = [t for t in trials if t.outcome == "completed"]  # not ASHA's partial scores
    return [(t.run.info.end_time / 1000, t.metrics["val_accuracy"]) for t in done]


def untracked(args) -> list[tuple[float, float]]:
    """The project's Tuner with no tracking callback."""
    from pathlib import Path

    from search.common.compat import patch_tune
    from search.common.connect import connect_ray
    from search.common.settings import apply_process_settings
    from search.searching.config import parse_args
    from search.searching.driver import prepare
    from search.searching.tuning import build_tuner
    from trainables.data import PROJECT_ROOT

    apply_process_settings("run")  # as the search's own entrypoint makes them: no per-trial result files
    patch_tune()  # and its patches of Tune (search/common/compat.py)
    argv = ["--dataset", args.dataset, "--num-samples", str(args.trials), "--seed", str(args.seed)]
    argv += ["--models", args.models, "--feature-sets", args.feature_sets]
    argv += ["--points-to-evaluate", args.points] if args.points else []
    config = parse_args(argv)
    _, split, _ = prepare(config)
    connect_ray(os.environ.get("RAY_ADDRESS"), PROJECT_ROOT)
    tuner = build_tuner(config, split, Path(args.storage) / "untracked", 2, callbacks=[])
    with redirect_stdout(io.StringIO()):
        results = tuner.fit()
    return [(r.metrics["timestamp"], r.metrics["val_accuracy"]) for r in results if "val_accuracy" in r.metrics]


def loop(args) -> list[tuple[float, float]]:
    """What a user writes without this project: Optuna's loop, one trial at a time, each logged to MLflow."""
    import mlflow
    import optuna

    from search.searching.config import read_points
    from trainables.data import load_dataset, split_dataset
    from trainables.space import flat_params
    from trainables.trainable import cross_validate

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    split = split_dataset(load_dataset(args.dataset), 0.2, args.seed)
    space = SearchSpace(args.models.split(","), args.feature_sets.split(","), args.seed, 5)
    mlflow.set_tracking_uri(args.tracking_uri)
    mlflow.set_experiment(f"bench-loop-{args.dataset}")
    finished, work = [], []

    def objective(trial: optuna.Trial) -> float:
        constants = space(trial)
        config = {**constants, "model": trial.params["model"], "feature_set": trial.params["feature_set"]}
        config[config["model"]] = {k.split("/", 1)[1]: v for k, v in trial.params.items() if "/" in k}
        start = time.perf_counter()
        metrics = cross_validate(config, split.X_dev, split.y_dev)
        work.append(time.perf_counter() - start)
        metrics.pop("confusion_matrix")
        with mlflow.start_run(nested=True):
            mlflow.log_params(flat_params(config))
            mlflow.log_metrics(metrics)
        finished.append((time.time(), metrics["val_accuracy"]))
        return metrics["val_accuracy"]

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=args.seed))
    for point in read_points(args.points) if args.points else []:
        study.enqueue_trial(space.point(point))
    with mlflow.start_run(run_name="plain-loop"):
        study.optimize(objective, n_trials=args.trials)
    args.work_s = sum(work)  # the cross-validation alone, one trial after another
    return finished


def grid(args) -> list[tuple[float, float]]:
    """GridSearchCV(n_jobs=2) over as many configurations from the same space; no per-trial times."""
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline

    from search.searching.config import read_points
    from trainables.data import load_dataset, split_dataset
    from trainables.space import config_from_params
    from trainables.trainable import pipeline_for

    split = split_dataset(load_dataset(args.dataset), 0.2, args.seed)
    points = []
    n, sets = args.trials, args.feature_sets
    drawn = read_points(args.points) if args.points else draw_points(args.models, args.seed, n, sets)
    for flat in drawn:
        config = config_from_params({**flat, "seed": args.seed, "cv_folds": 5})
        steps = dict(pipeline_for(config, split.X_dev.shape[1]).steps)
        points.append({"features": [steps["features"]], "scaler": [steps.get("scaler", "passthrough")],
                       "model": [steps["model"]]})  # fmt: skip
    template = Pipeline([("features", "passthrough"), ("scaler", "passthrough"), ("model", "passthrough")])
    folds = StratifiedKFold(5, shuffle=True, random_state=args.seed)
    search = GridSearchCV(template, points, cv=folds, n_jobs=2, scoring="accuracy").fit(split.X_dev, split.y_dev)
    return [(time.time(), float(search.best_score_))]


def draw_points(models: str, seed: int, n: int, feature_sets: str = ",".join(FEATURE_SETS)) -> list[dict]:
    """`n` configurations drawn at random (seeded) from the space, in the flat form of a trial's MLflow params."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace(models.split(","), feature_sets.split(","), seed, 5)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    points = []
    for _ in range(n):
        trial = study.ask()
        space(trial)
        points.append({k.split("/", 1)[-1]: v for k, v in trial.params.items()})
        study.tell(trial, 0.0)
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("setup", choices=("project", "untracked", "loop", "grid"))
    parser.add_argument("--dataset", default="iris")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--models", default=",".join(MODEL_FAMILIES))
    parser.add_argument("--feature-sets", default=",".join(FEATURE_SETS))
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db"))
    parser.add_argument("--storage", default="ray_results")
    parser.add_argument("--scheduler", default="fifo", help="for `project`: fifo or asha")
    parser.add_argument("--points", help="a JSON file of configurations every setup evaluates, in order")
    args = parser.parse_args()
    start = time.time()
    with redirect_stdout(io.StringIO()):  # only the JSON line below goes to stdout
        finished = globals()[args.setup](args)
    wall = getattr(args, "end", time.time()) - start
    line = {"setup": args.setup, "wall_s": wall, "start": start, "finished": finished}
    if hasattr(args, "work_s"):
        line["work_s"] = args.work_s
    print(json.dumps(line))


if __name__ == "__main__":
    main()
