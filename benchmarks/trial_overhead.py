"""What a trial costs beyond its own fit: this project's search against a naive Ray Tune + MLflow setup.

Both run the same space, seed and number of trials against the same `mlflow server`, interleaved A B A B:
- naive:   Tune's defaults (a fresh worker process per trial) and Ray's stock MLflowLoggerCallback;
- project: `search.searching.driver.run_search` (reused workers, data shipped once, one batched write per trial,
  off the loop).

    python benchmarks/trial_overhead.py --trials 20 --repeats 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def naive_search(uri: str, trials: int, seed: int, storage: Path) -> float:
    """The setup a user writes first; returns its wall seconds."""
    from ray import tune
    from ray.air.integrations.mlflow import MLflowLoggerCallback
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from trainables.data import load_dataset, split_dataset
    from trainables.features import FEATURE_SETS
    from trainables.models import MODEL_FAMILIES
    from trainables.space import SearchSpace
    from trainables.trainable import train_trial

    split = split_dataset(load_dataset("iris"), 0.2, seed)
    space = SearchSpace(list(MODEL_FAMILIES), list(FEATURE_SETS), seed, 5)
    tuner = tune.Tuner(
        tune.with_parameters(train_trial, X=split.X_dev, y=split.y_dev),
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(OptunaSearch(space, metric="val_accuracy", mode="max", seed=seed), 2),
            num_samples=trials,
        ),
        run_config=tune.RunConfig(
            storage_path=str(storage),
            callbacks=[MLflowLoggerCallback(tracking_uri=uri, experiment_name="bench-naive")],
            verbose=0,
        ),
    )
    start = time.perf_counter()
    tuner.fit()
    return time.perf_counter() - start


def project_search(uri: str, trials: int, seed: int, storage: Path) -> float:
    """This project's search; returns its wall seconds."""
    import io
    from contextlib import redirect_stdout

    from search.searching.config import parse_args
    from search.searching.driver import run_search

    argv = ["--tracking-uri", uri, "--experiment", "bench-project", "--num-samples", str(trials)]
    argv += ["--max-concurrent", "2", "--seed", str(seed), "--storage-path", str(storage), "--warm-start", "off"]
    start = time.perf_counter()
    with redirect_stdout(io.StringIO()):
        run_search(parse_args(argv))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import ray

    from cluster.private_mlflow import start_mlflow
    from cluster.processes import stop_process_group

    work = Path(tempfile.mkdtemp(prefix="bench-"))
    server, uri = start_mlflow(work / "mlflow")
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        timings: dict[str, list[float]] = {"naive": [], "project": []}
        for i in range(args.repeats):
            for name, fn in (("naive", naive_search), ("project", project_search)):
                timings[name].append(fn(uri, args.trials, 42, work / f"{name}-{i}"))
                print(f"repeat {i} {name}: {timings[name][-1]:.1f} s wall", flush=True)
        print(f"\n{args.trials} Iris trials, 2 at a time, 2 CPUs, {args.repeats} repeats (median, min-max):")
        print("| setup | wall s | trials/s | wall s per trial |")
        print("| --- | --- | --- | --- |")
        for name, walls in timings.items():
            median = statistics.median(walls)
            print(
                f"| {name} | {median:.1f} ({min(walls):.1f}-{max(walls):.1f}) "
                f"| {args.trials / median:.2f} | {median / args.trials:.2f} |"
            )
    finally:
        ray.shutdown()
        stop_process_group(server.pid)


if __name__ == "__main__":
    main()
