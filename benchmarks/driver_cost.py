"""Does the driver's cost per trial stay flat as a search grows? Cheap trials, 100 to 2,000 of them.

    python benchmarks/driver_cost.py --sizes 100,500,2000 --write BENCHMARKS.md

Each size is one real search (k-nearest neighbours on Iris, 2 folds: a trial is a few milliseconds of fitting)
tracked in a private `mlflow server`, then the same Tuner without tracking. Driver CPU is this process's CPU time
(Optuna sampling, Tune's bookkeeping, the tracking writer), divided by the number of trials.

A second table splits the whole machine's CPU a trial by who spent it: the trial workers (Tune's actors running
the trainable), the driver, the MLflow server, and Ray's own processes (raylet, GCS, dashboard and agents). On
2 cores a trial's wall time cannot fall below half its machine CPU, whatever the driver does.
"""

from __future__ import annotations

import argparse
import functools
import io
import os
import sys
import tempfile
import threading
import time
from contextlib import redirect_stdout
from pathlib import Path

import psutil

from benchmarks.compare import write_section
from cluster.private_mlflow import private_mlflow

ROOT = Path(__file__).resolve().parents[1]


ROLES = ("trial workers", "driver", "MLflow server", "Ray's processes", "other")


def role(process: psutil.Process) -> str:
    """Which of ROLES a process of this benchmark's tree plays."""
    if process.pid == os.getpid():
        return "driver"
    command = " ".join(process.cmdline())
    if "mlflow" in command:
        return "MLflow server"
    name = process.name()
    if "default_worker.py" in command or name.startswith(("ray::ImplicitFunc", "ray::IDLE", "ray::train")):
        return "trial workers"
    return "Ray's processes" if "ray" in command else "other"


class MachineCpu:
    """CPU seconds spent by this process and every process under it, by role, while the context runs: each
    process's CPU time is read once a second and at the end, so one that exits meanwhile keeps its last reading."""

    def __init__(self) -> None:
        self.seen: dict[int, tuple[str, float]] = {}
        self.start: dict[int, float] = {}
        self.done = threading.Event()

    def read(self) -> dict[int, tuple[str, float]]:
        """(role, CPU seconds) of every live process of the tree."""
        readings = {}
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                times = process.cpu_times()
                readings[process.pid] = (role(process), times.user + times.system)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return readings

    def __enter__(self) -> MachineCpu:
        self.start = {pid: cpu for pid, (_, cpu) in self.read().items()}
        self.seen = {}
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()
        return self

    def _merge(self, readings: dict[int, tuple[str, float]]) -> None:
        """Keep each process's latest CPU time and the most specific role it was ever seen in: a worker read
        while Ray renames it may show no command line for a moment."""
        for pid, (name, cpu) in readings.items():
            known = self.seen.get(pid, (name, 0.0))[0]
            self.seen[pid] = (min(name, known, key=ROLES.index), cpu)

    def _poll(self) -> None:
        while not self.done.wait(1.0):
            self._merge(self.read())

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self._merge(self.read())

    def by_role(self) -> dict[str, float]:
        """CPU seconds spent in the context, by role."""
        spent = dict.fromkeys(ROLES, 0.0)
        for pid, (name, cpu) in self.seen.items():
            spent[name] += cpu - self.start.get(pid, 0.0)
        return spent


def measure(work) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, this process's CPU seconds, the machine's CPU seconds by role) of `work()` on a Ray of its
    own (Ray's start and stop left out), its printing silenced."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with MachineCpu() as machine:
            cpu, wall = time.process_time(), time.perf_counter()
            with redirect_stdout(io.StringIO()):
                work()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return wall, cpu, machine.by_role()
    finally:
        ray.shutdown()


def bare_search(config, split, path: Path) -> None:
    """The same Tuner with no tracking callback (and the driver's patches of Tune)."""
    from search.common.compat import patch_tune
    from search.searching.tuning import build_tuner

    patch_tune()
    build_tuner(config, split, path, 2, callbacks=[]).fit()


def search_config(uri: str, size: int, storage: Path):
    """The settings of a search of `size` trivial trials: k-nearest neighbours on Iris, 2 folds, 2 at a time."""
    from search.searching.config import parse_args

    argv = ["--tracking-uri", uri, "--experiment", f"driver-cost-{size}", "--num-samples", str(size)]
    argv += ["--models", "knn", "--feature-sets", "basic", "--cv-folds", "2", "--max-concurrent", "2"]
    argv += ["--warm-start", "off"]
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
    split_rows = [
        "| trials | tracked? | " + " | ".join(ROLES) + " | machine CPU | its half (2 cores) | wall |",
        "|---|---|" + "---|" * (len(ROLES) + 3),
    ]
    with private_mlflow(work / "mlflow") as uri:
        for size in [int(n) for n in args.sizes.split(",")]:
            config = search_config(uri, size, work / f"tune-{size}")
            tracked = measure(functools.partial(run_search, config))
            _, split, _ = prepare(config)
            untracked = measure(functools.partial(bare_search, config, split, work / f"bare-{size}" / "search"))
            cells = [f"{tracked[0]:.0f}", f"{1000 * tracked[0] / size:.0f}", f"{1000 * tracked[1] / size:.0f}"]
            cells += [f"{untracked[0]:.0f}", f"{1000 * untracked[0] / size:.0f}", f"{1000 * untracked[1] / size:.0f}"]
            cells.append(f"{100 * (tracked[0] / untracked[0] - 1):+.0f}%")
            rows.append(f"| {size} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
            for kind, (wall, _, spent) in (("tracked", tracked), ("untracked", untracked)):
                total = sum(spent.values())
                cells = [f"{1000 * spent[name] / size:.0f}" for name in ROLES]
                cells += [f"{1000 * total / size:.0f}", f"{500 * total / size:.0f}", f"{1000 * wall / size:.0f}"]
                split_rows.append(f"| {size} | {kind} | " + " | ".join(cells) + " |")
                print(split_rows[-1], flush=True)
    text = f"`python benchmarks/driver_cost.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(rows)
    text += "\n\nThe machine's CPU a trial, by who spent it (ms; wall: ms a trial by the clock):\n\n"
    text += "\n".join(split_rows)
    print(text)
    if args.write:
        write_section(args.write, "driver-cost", text)


if __name__ == "__main__":
    main()
