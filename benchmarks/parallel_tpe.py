"""Sample efficiency of parallel TPE: the best score after N trials with K trials in flight against one at a time.

    python benchmarks/parallel_tpe.py                      # Iris and wine, 5 seeds, N = 50, K = 1 and 4
    python benchmarks/parallel_tpe.py --seeds 2 --trials 20 --settings today,no_liar   # a quick look

Every trial is the project's own: the define-by-run space (`SearchSpace`) and the cross-validated Pipeline score
of the trainable (`cross_validate`) on the development part of the seeded split, all seeded by the run's seed.
Trials go through Optuna's ask/tell with K asked-but-untold trials pending at all times; they are told first in,
first out (a cluster whose trials take equal time: each result arrives K - 1 asks after its own ask), so a run is
deterministic. This measures how many trials a score costs, not time: load on the machine does not change it.
"""

from __future__ import annotations

import argparse
import statistics
import warnings
from collections import deque
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import optuna

from trainables.data import load_dataset, split_dataset
from trainables.features import FEATURE_SETS
from trainables.models import MODEL_FAMILIES
from trainables.space import SearchSpace, config_from_params
from trainables.trainable import cross_validate

# TPESampler keyword arguments per setting; `today` is what OptunaSearch builds: TPESampler(seed=seed), whose
# Optuna 5 defaults are multivariate (single objective), constant_liar=True, group=False, n_startup_trials=10.
SETTINGS: dict[str, dict[str, Any]] = {
    "today": {},
    "no_liar": {"constant_liar": False},
    "group": {"multivariate": True, "group": True},
    "independent": {"multivariate": False},
    "group_startup_20": {"multivariate": True, "group": True, "n_startup_trials": 20},
}


def run_in_flight(study: optuna.Study, objective: Callable[[optuna.Trial], float], n_trials: int, k: int) -> None:
    """Ask `n_trials` trials keeping `k` asked-but-untold at all times (fewer only at the end), telling them in the
    order they were asked. `objective` is evaluated at ask time; its value is held until the trial is told."""
    pending: deque[tuple[optuna.Trial, float]] = deque()
    for _ in range(n_trials):
        if len(pending) == k:
            study.tell(*pending.popleft())
        trial = study.ask()
        pending.append((trial, objective(trial)))
    while pending:
        study.tell(*pending.popleft())


def best_scores(dataset: str, seed: int, settings: list[str], ks: list[int], n_trials: int) -> dict:
    """{(setting, k): best val_accuracy after `n_trials`} for one dataset and seed. Identical configurations are
    scored once (the score depends only on the configuration and the seed)."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # `group`
    split = split_dataset(load_dataset(dataset), 0.2, seed)
    space = SearchSpace(list(MODEL_FAMILIES), list(FEATURE_SETS), seed, 5)
    scored: dict[tuple, float] = {}

    def objective(trial: optuna.Trial) -> float:
        space(trial)
        flat = {name.split("/", 1)[-1]: value for name, value in trial.params.items()}
        key = tuple(sorted(flat.items()))
        if key not in scored:
            config = config_from_params({**flat, "seed": seed, "cv_folds": space.cv_folds})
            scored[key] = cross_validate(config, split.X_dev, split.y_dev)["val_accuracy"]
        return scored[key]

    out = {}
    for name in settings:
        for k in ks:
            sampler = optuna.samplers.TPESampler(seed=seed, **SETTINGS[name])
            study = optuna.create_study(direction="maximize", sampler=sampler)
            run_in_flight(study, objective, n_trials, k)
            out[(name, k)] = study.best_value
    return out


def table(results: dict, datasets: list[str], settings: list[str], ks: list[int], tolerance: float) -> str:
    """A Markdown table: per dataset and setting, the median over seeds of the best score for each K, and
    the difference between the largest K and K = 1 (negative: parallel TPE found less)."""
    head = "| dataset | setting | " + " | ".join(f"K={k}" for k in ks) + f" | K={ks[-1]} - K={ks[0]} | within |"
    lines = [head, "|" + " --- |" * (len(ks) + 4)]
    for dataset in datasets:
        for name in settings:
            medians = [statistics.median(v[(name, k)] for (d, _), v in results.items() if d == dataset) for k in ks]
            diff = medians[-1] - medians[0]
            cells = " | ".join(f"{m:.4f}" for m in medians)
            lines.append(f"| {dataset} | {name} | {cells} | {diff:+.4f} | {'yes' if diff >= -tolerance else 'no'} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="iris,wine")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS-1")
    parser.add_argument("--trials", type=int, default=50, help="N, trials per search")
    parser.add_argument("--in-flight", default="1,4", help="values of K, the first is the baseline")
    parser.add_argument("--settings", default=",".join(SETTINGS), help=f"some of {','.join(SETTINGS)}")
    parser.add_argument("--workers", type=int, default=2, help="processes, one (dataset, seed) each")
    parser.add_argument("--tolerance", type=float, default=0.005)
    args = parser.parse_args()
    datasets, settings = args.datasets.split(","), args.settings.split(",")
    unknown = [s for s in settings if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown settings {unknown}: use some of {','.join(SETTINGS)}")
    try:
        ks = [int(k) for k in args.in_flight.split(",")]
    except ValueError:
        parser.error(f"--in-flight {args.in_flight!r}: give comma-separated integers such as 1,4")
    jobs = [(d, s) for d in datasets for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        futures = {job: pool.submit(best_scores, *job, settings, ks, args.trials) for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    print(f"best val_accuracy after {args.trials} trials, median over {args.seeds} seeds, told first in first out")
    print(table(results, datasets, settings, ks, args.tolerance))


if __name__ == "__main__":
    main()
