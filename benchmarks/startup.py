"""Where a search's first seconds go: the time of each step from the driver process's start to its last trial.

    python benchmarks/startup.py --cluster --trials 100 --models logistic_regression --feature-sets basic
    python benchmarks/startup.py --trials 100 --repeats 3 --write BENCHMARKS.md      # embedded: a local Ray

Each repetition runs the project's search (`run_search`, as `search/run.py` does) in a fresh process, tracked in a
private `mlflow server`; with `--cluster` on `cluster/local.py up --workers 2`, started once, as a user's running
cluster is. The process marks each step in seconds since it started (its own imports included): the driver's
imports, the data, Ray, the parent run, `Tuner.fit`, the first trial worker's start and readiness (its process seen
on this machine, the trainable's imports done when it turns into Tune's actor), the first and last results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STEPS = (
    ("imports", "the driver's imports (Ray, Tune, MLflow, Optuna, scikit-learn, pandas)"),
    ("data", "the dataset loaded and split"),
    ("ray", "Ray connected (embedded: started)"),
    ("parent run", "the search's parent run recorded in MLflow"),
    ("fit", "`Tuner.fit` called"),
    ("worker process", "the first trial worker's process started"),
    ("worker ready", "the first trial worker has imported Ray and connected (`ray::IDLE`)"),
    ("first trial", "the first trial started on it (Tune, scikit-learn and pandas imported)"),
    ("first result", "the first trial's result in the driver"),
    ("last result", "the last trial's result"),
    ("done", "the search finished (figures drawn, parent run closed)"),
)


def child(argv: list[str]) -> None:
    """One search; prints one JSON line of {step: seconds since this process started}."""
    import threading

    import psutil

    born = psutil.Process().create_time()
    marks: dict[str, float] = {}

    def mark(step: str) -> None:
        marks.setdefault(step, time.time() - born)

    def watch_workers() -> None:
        while "done" not in marks:
            for p in psutil.process_iter(["name", "create_time"]):
                try:
                    if p.info["create_time"] > born and role(p) == "trial workers":
                        marks.setdefault("worker process", p.info["create_time"] - born)
                        if p.info["name"].startswith("ray::IDLE"):
                            mark("worker ready")
                except psutil.Error:
                    continue
            time.sleep(0.05)

    from ray import tune

    import search.searching.driver as driver
    import search.searching.parent_run as parent_run
    from benchmarks.driver_cost import role
    from search.searching import tracking, tuning  # noqa: F401 - as run_search imports them
    from search.searching.config import parse_args

    mark("imports")

    def after(module, name: str, step: str) -> None:
        """Mark `step` when `module.name` returns."""
        original = getattr(module, name)

        def marked(*args, **kwargs):
            result = original(*args, **kwargs)
            mark(step)
            return result

        setattr(module, name, marked)

    after(driver, "prepare", "data")
    after(driver, "connect_ray", "ray")
    after(parent_run, "start_search", "parent run")
    fit = tune.Tuner.fit

    def marked_fit(self):
        mark("fit")
        return fit(self)

    tune.Tuner.fit = marked_fit
    start, result = tracking.TrialTracker.log_trial_start, tracking.TrialTracker.log_trial_result
    results = []

    def on_start(self, trial):
        mark("first trial")
        return start(self, trial)

    def on_result(self, iteration, trial, metrics):
        results.append(time.time() - born)
        return result(self, iteration, trial, metrics)

    tracking.TrialTracker.log_trial_start, tracking.TrialTracker.log_trial_result = on_start, on_result
    threading.Thread(target=watch_workers, daemon=True).start()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):
        driver.run_search(parse_args(argv))
    mark("done")
    marks.update({"first result": results[0], "last result": results[-1]})
    print(json.dumps(marks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cluster", action="store_true", help="on a running local cluster (else embedded Ray)")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="logistic_regression")
    parser.add_argument("--feature-sets", default="basic")
    parser.add_argument("--write", type=Path, help="put the table into this Markdown file (e.g. BENCHMARKS.md)")
    parser.add_argument("--raw", type=Path, help="also save every run's steps (seconds) as JSON here")
    parser.add_argument("--tracking-uri", help="a running MLflow server to track in (default: a private one)")
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return

    from benchmarks.compare import start_cluster, stop_cluster, write_section
    from cluster.private_mlflow import start_mlflow
    from cluster.processes import stop_process_group

    work = Path(tempfile.mkdtemp(prefix="startup-"))
    server, uri = start_mlflow(work / "mlflow") if args.tracking_uri is None else (None, args.tracking_uri)
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    runs = []
    try:
        if args.cluster:
            env.update(start_cluster(work / "cluster"))
        for repeat in range(args.repeats):
            argv = ["--tracking-uri", uri, "--experiment", "startup", "--num-samples", str(args.trials)]
            argv += ["--models", args.models, "--feature-sets", args.feature_sets, "--max-concurrent", "2"]
            argv += ["--seed", str(repeat), "--storage-path", str(work / "ray_results"), "--warm-start", "off"]
            command = [sys.executable, "-m", "benchmarks.startup", "--child", *argv]
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            if done.returncode != 0:
                raise SystemExit(f"startup: the search failed: {done.stderr.strip().splitlines()[-1:]}")
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"repeat {repeat + 1}/{args.repeats}: {runs[-1]['done']:.1f} s", flush=True)
    finally:
        if args.cluster:
            stop_cluster(work / "cluster")
        if server is not None:
            stop_process_group(server.pid)
    where = "a running local cluster (2 worker nodes)" if args.cluster else "an embedded Ray (started by the search)"
    rows = [
        f"`python benchmarks/startup.py {' '.join(sys.argv[1:])}`: {args.trials} trials on {where}; seconds since "
        f"the driver process started, median (min-max) of {args.repeats}",
        "",
        "| step | s | |",
        "|---|---|---|",
    ]
    for step, meaning in STEPS:
        values = [r[step] for r in runs if step in r]
        spread = f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})" if values else "n/a"
        rows.append(f"| {step} | {spread} | {meaning} |")
    text = "\n".join(rows)
    print("\n" + text)
    if args.raw:
        args.raw.write_text(json.dumps(runs, indent=1))
    if args.write:
        write_section(args.write, "startup-cluster" if args.cluster else "startup-embedded", text)


if __name__ == "__main__":
    main()
