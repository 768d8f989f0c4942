"""Where a trivial trial's driver time goes: a sampling profile of the driver, split by component.

    python benchmarks/driver_profile.py --trials 400 [--untracked] [--write BENCHMARKS.md]

Runs the search of `benchmarks/driver_cost.py` (k-nearest neighbours on Iris, 2 folds, trials of a few ms) in a
child process under py-spy and attributes every sample in which a driver thread held the GIL to the first component
found on its stack, innermost first. Counting GIL holders only (py-spy's `--gil`) makes the profile the driver's
CPU: a thread waiting for the GIL, for a lock or for the network is left out, so the components add up to the CPU
the clock measures (without it, a writer thread waiting for the GIL counted as working and the sum exceeded it):

- study journal: Optuna's journal storage writing or reading the study;
- searcher: OptunaSearch and Optuna's sampler proposing the next configuration (the define-by-run space included);
- tracker: the tracking writer threads (MLflow requests, the confusion matrix);
- progress output: Tune's console reporter;
- Tune's loop: the rest of Tune's controller (scheduling, results, experiment state);
- other: the rest of the search's run (Ray's client calls, the driver's own code);
- start-up and end: everything outside `Tuner.fit` and the tracker's threads (imports, servers, Ray's start).

A component's ms a trial is its working samples over the sampling rate, divided by the number of trials.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# (component, a path fragment or function name that marks it), innermost match wins.
COMPONENTS = (
    ("study journal", "optuna/storages/journal"),
    ("searcher", "ray/tune/search/"),
    ("searcher", "optuna/"),
    ("searcher", "trainables/space.py"),
    ("tracker", "search/searching/tracking.py"),
    ("progress output", "ray/tune/progress_reporter.py"),
    ("progress output", "ray/tune/experimental/output.py"),
    ("Tune's loop", "ray/tune/"),
    ("Tune's loop", "ray/air/execution/"),
)
# Innermost frames that wait (Ray's error listener blocks in a native call that looks busy to a sampler).
WAITS = ("Condition.wait", "Queue.get", "Event.wait", "select", "poll", "Thread.join", "listen_error_messages")
RATE = 200  # samples a second


def component(frames: list[str]) -> str | None:
    """The component a stack belongs to, or None when its innermost frame is a wait."""
    if frames[-1].split(" (")[0].split(".")[-1] in {w.split(".")[-1] for w in WAITS}:
        return None
    for frame in reversed(frames):
        for name, marker in COMPONENTS:
            if marker in frame:
                return name
    in_search = any(f.startswith("Tuner.fit ") or f.startswith("TrialTracker.") for f in frames)
    return "other" if in_search else "start-up and end"


def shares(raw: Path) -> collections.Counter:
    """Working samples per component, from py-spy's raw (collapsed stacks) output."""
    counts: collections.Counter = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        name = component(stack.split(";"))
        if name is not None:
            counts[name] += int(count)
    return counts


def child(trials: int, tracked: bool) -> None:
    """The profiled process: one search of `trials` trivial trials; prints its driver CPU ms per trial."""
    import functools
    import time

    from benchmarks.driver_cost import bare_search, measure, search_config
    from cluster.private_mlflow import private_mlflow
    from search.searching.driver import prepare, run_search

    with tempfile.TemporaryDirectory(prefix="driver-profile-") as tmp:
        with private_mlflow(Path(tmp) / "mlflow") as uri:
            config = search_config(uri, trials, Path(tmp) / "tune")
            if tracked:
                work = functools.partial(run_search, config)
            else:
                work = functools.partial(bare_search, config, prepare(config)[1], Path(tmp) / "bare" / "search")
            started = time.perf_counter()
            _, cpu, _ = measure(work)
            print(f"CPU_MS_PER_TRIAL {1000 * cpu / trials:.1f} WALL_S {time.perf_counter() - started:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--untracked", action="store_true")
    parser.add_argument("--write", type=Path)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.trials, not args.untracked)
        return

    raw = Path(tempfile.mkdtemp(prefix="driver-profile-")) / "stacks.txt"
    command = [sys.executable, "-m", "benchmarks.driver_profile", "--child", "--trials", str(args.trials)]
    command += ["--untracked"] if args.untracked else []
    spy = [
        str(Path(sys.executable).with_name("py-spy")),
        "record",
        "--gil",  # holding the GIL: CPU, not waits
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--output",
        str(raw),
    ]
    out = subprocess.run([*spy, "--", *command], cwd=ROOT, capture_output=True, text=True, check=False)
    line = next((x for x in out.stdout.splitlines() if x.startswith("CPU_MS_PER_TRIAL")), None)
    if line is None or not raw.exists():
        raise SystemExit(f"driver_profile: the profiled search failed:\n{out.stderr[-2000:]}")
    counts = shares(raw)
    per_trial = {name: 1000 * count / RATE / args.trials for name, count in counts.items()}
    in_search = sum(ms for name, ms in per_trial.items() if name != "start-up and end")
    kind = "untracked" if args.untracked else "tracked"
    rows = [f"**{kind}, {args.trials} trivial trials**: {line.split()[3]} s wall, driver CPU {line.split()[1]} ms"]
    rows[0] += f" a trial by the clock, {in_search:.1f} ms a trial in the search by the profile"
    rows += ["", "| component | ms a trial | share of the search |", "|---|---|---|"]
    for name, ms in sorted(per_trial.items(), key=lambda kv: -kv[1]):
        share = f"{100 * ms / in_search:.0f}%" if name != "start-up and end" else ""
        rows.append(f"| {name} | {ms:.1f} | {share} |")
    text = f"`python benchmarks/driver_profile.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(rows)
    print(text)
    if args.write:
        from benchmarks.compare import write_section

        write_section(args.write, f"driver-profile-{kind}", text)


if __name__ == "__main__":
    main()
