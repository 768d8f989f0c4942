"""Several users at once: the compose cluster's total trials per second with three searches at once against one alone.

    docker compose up -d --build --scale ray-worker=3
    python benchmarks/concurrent_searches.py --trials 12 --write BENCHMARKS.md

Runs on the compose cluster of the current folder (or `--project`), through `docker compose exec ray-head python
search/run.py`, as users would: first one search of `--trials` trials alone, then `--searches` searches of as
many trials each started together. Wall time is from the first driver's start to the last one's end (each driver's
start-up included); total trials per second = all trials / that wall time. Each round repeats `--repeats` times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time
from pathlib import Path

from benchmarks.compare import write_section


def search_command(compose: list[str], experiment: str, trials: int, seed: int, models: str) -> list[str]:
    """`docker compose exec` of one search in the head, on the digits data."""
    return [
        *compose,
        "exec",
        "-T",
        "ray-head",
        "python",
        "search/run.py",
        "--experiment",
        experiment,
        "--dataset",
        "digits",
        "--cv-folds",
        "3",
        "--models",
        models,
        "--num-samples",
        str(trials),
        "--seed",
        str(seed),
        "--warm-start",
        "off",
    ]


def round_wall(compose: list[str], searches: int, trials: int, seed: int, models: str) -> float:
    """Seconds for `searches` searches of `trials` trials, started together, to all finish."""
    began = time.perf_counter()
    drivers = [
        subprocess.Popen(
            search_command(compose, f"bench_concurrent_{searches}", trials, seed + i, models),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(searches)
    ]
    for driver in drivers:
        _, err = driver.communicate()
        if driver.returncode != 0:
            raise SystemExit(f"concurrent_searches: a search failed (exit {driver.returncode}): {err[-500:]}")
    return time.perf_counter() - began


def table(results: dict[int, list[float]], trials: int, workers: int) -> str:
    """The Markdown table: wall and total trials per second for each number of searches at once."""
    alone = statistics.median(results[1])
    lines = [
        "| searches at once | trials in all | wall s (median) | total trials/s | vs one alone |",
        "|---|---|---|---|---|",
    ]
    for searches, walls in sorted(results.items()):
        wall = statistics.median(walls)
        rate = searches * trials / wall
        lines.append(f"| {searches} | {searches * trials} | {wall:.0f} | {rate:.2f} | {rate / (trials / alone):.2f}x |")
    return "\n".join(lines) + f"\n\n{workers} ray-worker containers of 1 CPU each, on one 2-core machine."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12, help="trials of each search")
    parser.add_argument("--searches", type=int, default=3, help="searches started together (default 3)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--models", default="random_forest,svm,logistic_regression")
    parser.add_argument("--project", help="the compose project's name (default: compose's own, from the folder)")
    parser.add_argument("--workers", type=int, default=3, help="ray-worker containers running (for the table)")
    parser.add_argument("--write", type=Path, help="put the table into this Markdown file (e.g. BENCHMARKS.md)")
    args = parser.parse_args()
    compose = ["docker", "compose", *(["-p", args.project] if args.project else [])]
    results: dict[int, list[float]] = {1: [], args.searches: []}
    for repeat in range(args.repeats):
        for searches in results:
            wall = round_wall(compose, searches, args.trials, 100 * repeat, args.models)
            results[searches].append(wall)
            print(f"{searches} search(es) of {args.trials} trials: {wall:.1f} s", flush=True)
    command = f"python benchmarks/concurrent_searches.py --trials {args.trials} --repeats {args.repeats}"
    text = f"`{command} --write BENCHMARKS.md`\n\n{table(results, args.trials, args.workers)}"
    print(text)
    if args.write:
        write_section(args.write, "concurrent-searches", text)


if __name__ == "__main__":
    main()
