"""What fold checkpoints cost a search of cheap trials: the project's rule against no checkpoints (the behaviour
before them) and against a checkpoint after every fold, in the same run, interleaved, on one local Ray.

Variants (each `search.searching.driver.run_search` on Iris, 5 folds, 2 trials at a time, one `mlflow server`):
- fifo-off:   the default scheduler, no checkpoint ever (the trainable as it was);
- fifo-rule:  the default scheduler with the project's rule (a fold is kept after 2 s of unkept fitting);
- fifo-every: the default scheduler, a checkpoint (and so a report) after every fold;
- fifo-run:   the default scheduler, folds kept on the trial's MLflow run with the same rule, as on a worker that
              does not see Tune's folder (compose): each trial start asks the server for folds to take over;
- asha-off:   `--scheduler asha`, a report per fold, no checkpoint;
- asha-rule:  `--scheduler asha` with the project's rule (every reported fold carries its checkpoint).

    python benchmarks/fold_checkpoints.py --trials 60 --repeats 2 [--write BENCHMARKS.md]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

VARIANTS = {  # name: (scheduler, where folds are kept, seconds of unkept fitting worth keeping)
    "fifo-off": ("fifo", None, None),
    "fifo-rule": ("fifo", "checkpoint", None),
    "fifo-every": ("fifo", "checkpoint", 0.0),
    "fifo-run": ("fifo", "run", None),
    "asha-off": ("asha", None, None),
    "asha-rule": ("asha", "checkpoint", None),
}


def run_variant(name: str, uri: str, trials: int, storage: Path) -> float:
    """One search of the variant; its wall seconds."""
    from ray import tune

    from search.common.contract import STUDY_JOURNAL
    from search.searching import tuning
    from search.searching.config import parse_args
    from search.searching.driver import run_search
    from trainables.trainable import train_trial

    scheduler, keep, keep_after_s = VARIANTS[name]

    def make_trainable(config, split, tune_path, runs=None):
        journal = str(tune_path / STUDY_JOURNAL) if keep == "checkpoint" else None
        trainable = tune.with_parameters(train_trial, X=split.X_dev, y=split.y_dev, report_folds=scheduler == "asha",
                                         storage=journal, keep_after_s=keep_after_s,
                                         runs=runs if keep == "run" else None)  # fmt: skip
        return tune.with_resources(trainable, {"cpu": 1})

    original, tuning.make_trainable = tuning.make_trainable, make_trainable
    argv = ["--tracking-uri", uri, "--experiment", f"bench-folds-{name}", "--num-samples", str(trials)]
    argv += ["--max-concurrent", "2", "--scheduler", scheduler, "--storage-path", str(storage)]
    try:
        start = time.perf_counter()
        with redirect_stdout(io.StringIO()):
            run_search(parse_args(argv))
        return time.perf_counter() - start
    finally:
        tuning.make_trainable = original


def table(trials: int, repeats: int, timings: dict[str, list[float]], command: str) -> str:
    what = f"Iris, {trials} trials, 5 folds, 2 at a time, 2 CPUs, {repeats} repeats interleaved (median, min-max):"
    lines = [f"`{command}`  ", what, "", "| variant | wall s | s per trial | vs off |", "| --- | --- | --- | --- |"]
    for name, walls in timings.items():
        base = statistics.median(timings[name.split("-")[0] + "-off"])
        median = statistics.median(walls)
        lines.append(f"| {name} | {median:.1f} ({min(walls):.1f}-{max(walls):.1f}) | {median / trials:.3f} "
                     f"| {median / base:.2f}x |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--write", type=Path, help="replace the fold-checkpoints block of this Markdown file")
    args = parser.parse_args()

    import ray

    from benchmarks.compare import write_section
    from cluster.private_mlflow import start_mlflow
    from cluster.processes import stop_process_group

    names = args.variants.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-folds-"))
    server, uri = start_mlflow(work / "mlflow")
    timings: dict[str, list[float]] = {name: [] for name in names}
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        for i in range(args.repeats):
            for name in names:
                timings[name].append(run_variant(name, uri, args.trials, work / f"{name}-{i}"))
                print(f"repeat {i} {name}: {timings[name][-1]:.1f} s wall", flush=True)
    finally:
        ray.shutdown()
        stop_process_group(server.pid)
    command = f"python benchmarks/fold_checkpoints.py --trials {args.trials} --repeats {args.repeats}"
    command += f" --variants {args.variants}" if args.variants != ",".join(VARIANTS) else ""
    text = table(args.trials, args.repeats, timings, command)
    print("\n" + text)
    if args.write:
        write_section(args.write, "fold-checkpoints", text)


if __name__ == "__main__":
    main()
