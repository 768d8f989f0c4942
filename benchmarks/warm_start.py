"""What warm start, the related path and `--plateau` save, counted in trials (load on the machine does not change it).

    python benchmarks/warm_start.py                                   # the full run: 5 seeds, 200 / 50 trials
    python benchmarks/warm_start.py --seeds 2 --reference 60 --earlier 20 --budget 60   # a quick look

Per dataset and seed, every search is the project's own: the define-by-run space, the cross-validated score of the
trainable on the seed's development part, Optuna's TPE seeded as OptunaSearch seeds it, 2 trials in flight told
first in, first out (`parallel_tpe.run_in_flight`: the project's default on 2 CPUs, deterministic here).

- cold: a search from nothing; its best after `--reference` trials is the reference.
- warm: the same settings, its study holding the completed trials of one earlier `--earlier`-trial search with the
  same settings (which, same seed, proposed the cold search's first trials), converted by the driver's own code
  (`search.searching.warm.finished_trials`, from `search.common.trials.Trial` records), and the best of them run
  first (`search.searching.warm.incumbent`), as the driver does.
- known only: the same warm search without the best run first: what the sampler alone makes of the earlier trials.
- related: the earlier search ran on another seed (another split); its best few configurations are enqueued
  (`search.searching.warm.best_points`) and run first.
Each counts the trials it ran until one came within `--tolerance` of the reference, and its best after `--budget`.
`--plateau` datasets: where a cold search with `--plateau 50` (the project's `Plateau` stopper fed the same results)
would have ended, and its best then against the whole search's.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import warnings
from concurrent.futures import ProcessPoolExecutor

import optuna

from benchmarks.parallel_tpe import run_in_flight
from search.common import contract as c
from search.common.trials import Trial
from search.searching.config import SearchConfig
from search.searching.plateau import Plateau
from search.searching.warm import best_points, finished_trials, incumbent
from trainables.data import load_dataset, split_dataset
from trainables.features import FEATURE_SETS
from trainables.models import MODEL_FAMILIES
from trainables.space import SearchSpace, config_from_params
from trainables.trainable import cross_validate

IN_FLIGHT = 2
RELATED_SEED = 100  # the related search's seed is seed + RELATED_SEED


def objective_for(dataset: str, seed: int, models: list[str]):
    """The project's trial on the seed's split, scored once per configuration; and its space."""
    split = split_dataset(load_dataset(dataset), 0.2, seed)
    space = SearchSpace(models, list(FEATURE_SETS), seed, 5)
    scored: dict[str, float] = {}

    def objective(trial: optuna.Trial) -> float:
        space(trial)
        flat = {name.split("/", 1)[-1]: value for name, value in trial.params.items()}
        key = json.dumps(flat, sort_keys=True, default=str)
        if key not in scored:
            config = config_from_params({**flat, c.SEED: seed, c.CV_FOLDS: 5})
            scored[key] = cross_validate(config, split.X_dev, split.y_dev)[c.VAL_ACCURACY]
        return scored[key]

    return objective, space


def search(objective, seed: int, trials: int, known=(), first=()) -> list[float]:
    """The values of a search's own trials in the order they were told."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.add_trials(list(known))
    for point in first:
        study.enqueue_trial(point)
    run_in_flight(study, objective, trials, IN_FLIGHT)
    return [t.value for t in study.trials[len(known) :]]


def as_records(study_trials: list[optuna.trial.FrozenTrial], seed: int) -> list[Trial]:
    """A search's trials as the project's trial records, as MLflow would hold them."""
    records = []
    for trial in study_trials:
        flat = {name.split("/", 1)[-1]: value for name, value in trial.params.items()}
        config = config_from_params({**flat, c.SEED: seed, c.CV_FOLDS: 5}) | {c.TRIAL_INDEX: trial.number}
        records.append(Trial.from_result(config, {c.VAL_ACCURACY: trial.value, c.FOLDS_DONE: 5}))
    return records


def earlier_search(objective, seed: int, trials: int) -> list[optuna.trial.FrozenTrial]:
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    run_in_flight(study, objective, trials, IN_FLIGHT)
    return study.trials


def needed(values: list[float], target: float) -> int | None:
    """1-based count of trials until one reached `target`; None if none did."""
    return next((i + 1 for i, v in enumerate(values) if v >= target), None)


def plateau_stop(values: list[float], patience: int, min_delta: float) -> int:
    """After how many trials the project's Plateau stopper ends a search that told these values."""
    stopper = Plateau(c.VAL_ACCURACY, patience, min_delta, 5)
    for i, value in enumerate(values):
        stopper(str(i), {c.VAL_ACCURACY: value, c.FOLDS_DONE: 5})
        if stopper.stop_all():
            return i + 1
    return len(values)


def one(dataset: str, seed: int, args) -> dict:
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore")  # scikit-learn's on constant columns of digits' subset feature set
    models = args.models.split(",")
    objective, space = objective_for(dataset, seed, models)
    cold = search(objective, seed, args.reference)
    out = {"dataset": dataset, "seed": seed, "reference": max(cold), "cold": cold}
    if dataset in args.plateau_datasets.split(","):
        stop = plateau_stop(cold, args.patience, args.min_delta)
        out["plateau"] = {"stopped_at": stop, "best_then": max(cold[:stop]), "best_full": max(cold)}
    if dataset not in args.datasets.split(","):
        return out
    config = SearchConfig(dataset=dataset, models=models, seed=seed, num_samples=args.budget)
    earlier = as_records(earlier_search(objective, seed, args.earlier), seed)
    known = finished_trials(config, space, earlier, "earlier")
    out["known only"] = search(objective, seed, args.budget, known=known)
    out["warm"] = search(objective, seed, args.budget, known=known, first=[incumbent(config, space, earlier)[1]])
    other, _ = objective_for(dataset, seed + RELATED_SEED, models)
    related = as_records(earlier_search(other, seed + RELATED_SEED, args.earlier), seed + RELATED_SEED)
    out["related"] = search(objective, seed, args.budget, first=best_points(config, space, related))
    return out


def median(values: list[float]) -> float:
    """The median, a search that never came within the tolerance counting as more than any that did."""
    return statistics.median(math.inf if v is None else v for v in values)


def tables(results: list[dict], args) -> str:
    """The Markdown tables of BENCHMARKS.md from the jobs' results."""
    kinds = ("cold", "warm", "known only", "related")
    lines = [f"Trials a search ran until one came within {args.tolerance} of the cold {args.reference}-trial search's "
             f"best (median over seeds, each seed in brackets, `-` never within {args.budget}); best "
             f"val_accuracy after {args.budget} trials (median)", "",
             f"| dataset | {' | '.join(kinds)} | warm / cold | best: {' | '.join(kinds)} |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for dataset in args.datasets.split(","):
        rows = [r for r in results if r["dataset"] == dataset and "warm" in r]
        if not rows:
            continue
        count = {k: [needed(r[k][: args.budget], r["reference"] - args.tolerance) for r in rows] for k in kinds}
        best = {k: statistics.median(max(r[k][: args.budget]) for r in rows) for k in kinds}
        cells = [f"{median(count[k]):g} {[v or '-' for v in count[k]]}".replace("'", "") for k in kinds]
        share = median(count["warm"]) / median(count["cold"])
        lines.append(f"| {dataset} | {' | '.join(cells)} | {share:.2f} | "
                     f"{' | '.join(f'{best[k]:.4f}' for k in kinds)} |")  # fmt: skip
    stopped = [r for r in results if "plateau" in r]
    if stopped:
        lines += ["", f"`--plateau {args.patience} --min-delta {args.min_delta}` on cold {args.reference}-trial "
                  "searches: where it ends them, and the best then against the whole search's", "",
                  "| dataset | ended after (per seed) | trials saved, median | best then − best of all (per seed) |",
                  "| --- | --- | --- | --- |"]  # fmt: skip
        for dataset in args.plateau_datasets.split(","):
            rows = [r["plateau"] for r in stopped if r["dataset"] == dataset]
            ends = [p["stopped_at"] for p in rows]
            losses = [f"{p['best_then'] - p['best_full']:+.4f}" for p in rows]
            saved = statistics.median(args.reference - e for e in ends)
            lines.append(f"| {dataset} | {ends} | {saved:g} of {args.reference} | {', '.join(losses)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="wine,breast_cancer", help="warm and related searches")
    parser.add_argument("--plateau-datasets", default="iris,digits", help="where --plateau is measured")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0 .. SEEDS-1")
    parser.add_argument("--reference", type=int, default=200, help="trials of the cold search, the reference")
    parser.add_argument("--earlier", type=int, default=50, help="trials of the earlier search")
    parser.add_argument("--budget", type=int, default=200, help="trials of the warm and related searches")
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--patience", type=int, default=50)
    parser.add_argument("--min-delta", type=float, default=0.001)
    parser.add_argument("--models", default=",".join(MODEL_FAMILIES))
    parser.add_argument("--workers", type=int, default=2, help="processes, one (dataset, seed) each")
    args = parser.parse_args()
    datasets = dict.fromkeys(args.datasets.split(",") + args.plateau_datasets.split(","))
    jobs = [(d, s) for d in datasets for s in range(args.seeds)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = []
        for result in pool.map(one, *zip(*jobs, strict=True), [args] * len(jobs)):
            results.append(result)  # each job's values as it ends, so a long run can be read as it goes
            print(json.dumps(result), file=sys.stderr, flush=True)
    print(tables(results, args))


if __name__ == "__main__":
    main()
