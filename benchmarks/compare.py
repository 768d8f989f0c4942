"""Side-by-side benchmark: this project's search against a plain Optuna loop and GridSearchCV, same space and seed.

    python benchmarks/compare.py --dataset iris --trials 200 --repeats 3 --write BENCHMARKS.md
    python benchmarks/compare.py --dataset digits --trials 40 --models random_forest,gradient_boosting,svm,mlp

Each repetition runs every setup once, interleaved (A B C D E, A B C D E, ...), each in a fresh process, against one
`mlflow server` started here. Setups (benchmarks/setups.py): `project` on a local Ray, `cluster` (the project's
search on `cluster/local.py up --workers 2`), `loop` (plain sequential Optuna + MLflow), `grid` (GridSearchCV,
n_jobs=2), `untracked` (the project's search without MLflow), `asha` (the project's search with
`--scheduler asha`). Reports medians with min-max.

With `--same-configs` every setup evaluates the same list of configurations (drawn once, at random, from the space)
in the same order, so the wall times compare the machinery on identical work; the plain loop's time inside
cross-validation is that work, and half of it is what two cores cannot beat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cluster.private_mlflow import start_mlflow
from cluster.processes import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
SETUPS = ("project", "cluster", "loop", "grid", "untracked")  # and "asha": the project's search with ASHA


def start_cluster(state_dir: Path, workers: int = 2, tracking: bool = False) -> dict[str, str]:
    """`cluster/local.py up --workers N` on free ports; returns the variables a driver needs (its MLflow server's
    address too with `tracking`: else the caller gives the driver its own)."""
    ports = {f"--{name}-port": str(free_port()) for name in ("mlflow", "ray", "dashboard", "ray-client")}
    command = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), "up"]
    command += ["--workers", str(workers), *[x for kv in ports.items() for x in kv]]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    state = json.loads((state_dir / "state.json").read_text())
    from cluster.local import exports

    return {k: v for k, v in exports(state).items() if tracking or k != "MLFLOW_TRACKING_URI"}


def stop_cluster(state_dir: Path) -> None:
    """`cluster/local.py down` for the cluster `start_cluster` started in `state_dir`."""
    down = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), "down"]
    subprocess.run(down, stdout=subprocess.DEVNULL, check=False)


def run_setup(setup: str, args, uri: str, storage: Path, cluster_env: dict[str, str], points: Path | None) -> dict:
    """Run one setup in a fresh process and return its JSON line."""
    name = "project" if setup in ("cluster", "asha") else setup
    command = [sys.executable, str(ROOT / "benchmarks/setups.py"), name, "--dataset", args.dataset]
    command += ["--scheduler", "asha" if setup == "asha" else "fifo"]
    command += ["--trials", str(args.trials), "--models", args.models, "--feature-sets", args.feature_sets]
    command += ["--tracking-uri", uri, "--storage", str(storage)]
    command += ["--points", str(points)] if points else []
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    if setup == "cluster":
        env.update(cluster_env)
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=storage)
    if done.returncode != 0:
        raise SystemExit(f"benchmark: setup {setup} failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def time_to_near(result: dict, target: float) -> float | None:
    """Seconds from the setup's start until a trial scored within 0.005 of `target`."""
    times = sorted(t for t, score in result["finished"] if score >= target - 0.005)
    return times[0] - result["start"] if times else None


def table(results: dict[str, list[dict]], trials: int) -> str:
    """The Markdown table: medians with min-max over the repetitions."""
    best = max(score for runs in results.values() for r in runs for _, score in r["finished"])

    def spread(values: list[float], fmt: str = "{:.1f}") -> str:
        if not values:
            return "n/a"
        return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"

    rows = [
        "| setup | wall s | trials/s | best val_accuracy | s to within 0.005 of the best |",
        "|---|---|---|---|---|",
    ]
    for setup, runs in results.items():
        walls = [r["wall_s"] for r in runs]
        bests = [max(s for _, s in r["finished"]) for r in runs]
        near = [t for r in runs if (t := time_to_near(r, best)) is not None and setup != "grid"]
        rate = trials / statistics.median(walls)
        rows.append(f"| {setup} | {spread(walls)} | {rate:.2f} | {spread(bests, '{:.4f}')} | {spread(near)} |")
    return "\n".join(rows)


def bound(results: dict[str, list[dict]]) -> str:
    """The 2-core bound a like-for-like comparison implies: half the plain loop's cross-validation time."""
    work = [r["work_s"] for r in results.get("loop", []) if "work_s" in r]
    if not work:
        return ""
    w = statistics.median(work)
    return (
        f"\n\nThe plain loop spent {w:.1f} s (median) inside cross-validation; with {os.cpu_count()} cores no setup "
        f"can do that work in less than {w / (os.cpu_count() or 1):.1f} s, before any tracking or scheduling."
    )


def write_section(path: Path, key: str, text: str) -> None:
    """Replace (or append) the block between `<!-- compare:key -->` markers in `path`."""
    begin, end = f"<!-- compare:{key} -->", f"<!-- /compare:{key} -->"
    current = path.read_text() if path.exists() else ""
    block = f"{begin}\n{text}\n{end}"
    if begin in current:
        head, rest = current.split(begin, 1)
        current = head + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip() + "\n\n" + block + "\n"
    path.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="iris")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="logistic_regression,random_forest,svm,gradient_boosting,knn,mlp")
    parser.add_argument("--feature-sets", default="basic,subset,squared,pca")
    parser.add_argument("--setups", default=",".join(SETUPS))
    parser.add_argument("--write", type=Path, help="put the table into this Markdown file (e.g. BENCHMARKS.md)")
    parser.add_argument("--raw", type=Path, help="also save every run's timings and scores as JSON here")
    parser.add_argument("--same-configs", action="store_true", help="every setup evaluates the same configurations")
    args = parser.parse_args()
    setups = args.setups.split(",")
    work = Path(tempfile.mkdtemp(prefix="compare-"))
    server, uri = start_mlflow(work / "mlflow")
    cluster_env: dict[str, str] = {}
    state_dir = work / "cluster"
    points = None
    if args.same_configs:
        from benchmarks.setups import draw_points

        points = work / "points.json"
        points.write_text(json.dumps(draw_points(args.models, 42, args.trials, args.feature_sets)))
    try:
        if "cluster" in setups:
            cluster_env = start_cluster(state_dir)
        results: dict[str, list[dict]] = {s: [] for s in setups}
        for repeat in range(args.repeats):
            for setup in setups:
                storage = work / f"{setup}-{repeat}"
                storage.mkdir()
                result = run_setup(setup, args, uri, storage, cluster_env, points)
                results[setup].append(result)
                print(f"repeat {repeat + 1}/{args.repeats} {setup}: {result['wall_s']:.1f} s", flush=True)
    finally:
        if cluster_env:
            stop_cluster(state_dir)
        stop_process_group(server.pid)
    command = " ".join(["python", "benchmarks/compare.py", *sys.argv[1:]])
    text = (
        f"**{args.dataset}, {args.trials} trials, {args.repeats} repetitions interleaved** — `{command}`  \n"
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, median (min-max); wall time counts from the "
        f"setup's first step, starting Ray included; 'within 0.005' counts from the same start."
        + (" Every setup evaluated the same configurations, in the same order." if args.same_configs else "")
        + "\n\n"
        + table(results, args.trials)
        + (bound(results) if args.same_configs else "")
    )
    print("\n" + text)
    if args.raw:
        args.raw.write_text(json.dumps(results, indent=1))
    if args.write:
        key = args.dataset + ("-same" if args.same_configs else "")
        key += f"-{args.models}" if "," not in args.models else ""  # one family: its own table
        write_section(args.write, key, text)


if __name__ == "__main__":
    main()
