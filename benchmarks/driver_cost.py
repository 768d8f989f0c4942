"""Does the driver's cost per trial stay flat as a search grows? Cheap trials, 100 to 2,000 of them.

    python benchmarks/driver_cost.py --sizes 100,500,2000 --write BENCHMARKS.md

Each size is one real search (k-nearest neighbours on Iris, 2 folds: a trial is a few milliseconds of fitting)
tracked in a private `mlflow server`, then the same Tuner without tracking. Driver CPU is this process's CPU time
(Optuna sampling, Tune's bookkeeping, the tracking writer), divided by the number of trials.
"""

from __future__ import annotations

import argparse
import functools
import io
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.compare import write_section
from cluster.private_mlflow import private_mlflow

ROOT = Path(__file__).resolve().parents[1]


def measure(work) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds) of `work()` on a Ray of its own, its printing silenced."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        with redirect_stdout(io.StringIO()):
            work()
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        ray.shutdown()


def bare_search(config, split, path: Path) -> None:
    """The same Tuner with no tracking callback."""
    from search.searching.tuning import build_tuner

    build_tuner(config, split, path, 2, callbacks=[]).fit()


def search_config(uri: str, size: int, storage: Path):
    """The settings of a search of `size` trivial trials: k-nearest neighbours on Iris, 2 folds, 2 at a time."""
    from search.searching.config import parse_args

    argv = ["--tracking-uri", uri, "--experiment", f"driver-cost-{size}", "--num-samples", str(size)]
    argv += ["--models", "knn", "--feature-sets", "basic", "--cv-folds", "2", "--max-concurrent", "2"]
    return parse_args([*argv, "--storage-path", str(storage)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,2000")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()

    from search.searching.driver import prepare, run_search

    work = Path(tempfile.mkdtemp(prefix="driver-cost-"))
    header = "| trials | tracked: wall s | ms a trial | driver CPU ms a trial | untracked: wall s | ms a trial |"
    rows = [header + " driver CPU ms a trial | tracking adds |", "|---|---|---|---|---|---|---|---|"]
    with private_mlflow(work / "mlflow") as uri:
        for size in [int(n) for n in args.sizes.split(",")]:
            config = search_config(uri, size, work / f"tune-{size}")
            tracked = measure(functools.partial(run_search, config))
            _, split = prepare(config)
            untracked = measure(functools.partial(bare_search, config, split, work / f"bare-{size}" / "search"))
            cells = [f"{tracked[0]:.0f}", f"{1000 * tracked[0] / size:.0f}", f"{1000 * tracked[1] / size:.0f}"]
            cells += [f"{untracked[0]:.0f}", f"{1000 * untracked[0] / size:.0f}", f"{1000 * untracked[1] / size:.0f}"]
            cells.append(f"{100 * (tracked[0] / untracked[0] - 1):+.0f}%")
            rows.append(f"| {size} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    text = f"`python benchmarks/driver_cost.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, "driver-cost", text)


if __name__ == "__main__":
    main()
