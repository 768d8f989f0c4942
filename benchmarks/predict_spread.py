"""How far `predict_ms` moves with load: one configuration measured alone, then while two other trials run.

    python benchmarks/predict_spread.py                  # 20 measurements each, a random forest on Iris
    python benchmarks/predict_spread.py --model svm --dataset digits

Each measurement is the trainable's own `time_to_predict` (thread CPU time, median of 5 predictions of 1,000 rows)
on one fitted Pipeline. "Busy": two processes run the project's trials (cross-validations of forests on digits) in
a loop the whole time. The target: the two medians within 25% of each other.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from trainables.data import load_dataset, split_dataset
from trainables.space import config_from_params
from trainables.trainable import pipeline_for, time_to_predict

CONFIGS = {
    "random_forest": {"n_estimators": "100", "max_depth": "8", "min_samples_leaf": "2", "max_features": "sqrt"},
    "logistic_regression": {"C": "1.0", "class_weight": "none"},
    "svm": {"C": "10", "kernel": "rbf", "gamma": "0.01"},
}
BUSY = """
from search.common import contract as c
from trainables.data import load_dataset, split_dataset
from trainables.space import config_from_params
from trainables.trainable import cross_validate
split = split_dataset(load_dataset("digits"), 0.2, 0)
config = config_from_params({"model": "random_forest", "feature_set": "basic", "n_estimators": "200",
                             "max_depth": "12", "min_samples_leaf": "1", "max_features": "sqrt", "seed": "0",
                             "cv_folds": "5"})
while True:
    cross_validate(config, split.X_dev, split.y_dev)
"""


def measure(pipeline, X, times: int) -> list[float]:
    return [time_to_predict(pipeline, X) for _ in range(times)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="iris")
    parser.add_argument("--model", choices=sorted(CONFIGS), default="random_forest")
    parser.add_argument("--times", type=int, default=20)
    args = parser.parse_args()
    split = split_dataset(load_dataset(args.dataset), 0.2, 0)
    flat = {"model": args.model, "feature_set": "basic", **CONFIGS[args.model], "seed": "0", "cv_folds": "5"}
    pipeline = pipeline_for(config_from_params(flat), split.X_dev.shape[1]).fit(split.X_dev, split.y_dev)
    load = [open("/proc/loadavg").read().split()[0]]
    idle = measure(pipeline, split.X_dev, args.times)
    root = str(Path(__file__).resolve().parents[1])
    busy_procs = [subprocess.Popen([sys.executable, "-c", BUSY], cwd=root) for _ in range(2)]
    try:
        time.sleep(5)  # the busy trials past their imports, fitting
        load.append(open("/proc/loadavg").read().split()[0])
        busy = measure(pipeline, split.X_dev, args.times)
    finally:
        for proc in busy_procs:
            proc.kill()
            proc.wait()
    a, b = statistics.median(idle), statistics.median(busy)
    print(f"{args.model} on {args.dataset}, predict_ms {args.times} times each (load {load[0]}, then {load[1]})")
    print("| | median | min | max |\n| --- | --- | --- | --- |")
    for name, values in (("alone", idle), ("two trials running", busy)):
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {max(values):.3f} |")
    print(f"busy / alone medians: {b / a:.2f} (target within 25%: {'yes' if abs(b / a - 1) <= 0.25 else 'no'})")


if __name__ == "__main__":
    main()
