"""What the patches of search/common/compat.py pay for: the project's search with Tune as it ships and as patched.

`keep_starting_actors`: a search of cheap Iris trials (`run_search`, a private 2-CPU Ray, reused actors, a local
SQLite tracking store), each variant in a process of its own (a patch is process-wide), alternated A B A B. As Tune
ships, an actor freed by a trial shorter than an actor's start is handed to the next trial and the starting actor
is killed, so trials tend to run one at a time. `retry_trials_of_lost_cached_actors` is a correctness fix: without
it a trial fails for good (tests/integration/test_compat_patches.py reproduces it, every run).

    python benchmarks/tune_patches.py --trials 60 --repeats 3
"""

from __future__ import annotations

import argparse
import io
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("patched", "as-tune-ships")


def one_search(variant: str, trials: int, work: Path) -> float:
    """One search in this process; its wall seconds, Ray's start included."""
    import ray

    from search.common import compat
    from search.searching.config import parse_args
    from search.searching.driver import run_search

    if variant == "as-tune-ships":
        compat.keep_starting_actors = lambda: None  # the driver's patch_tune then leaves the controller as shipped
    uri = f"sqlite:///{work / 'mlflow.db'}"
    argv = ["--tracking-uri", uri, "--experiment", f"bench-{variant}", "--num-samples", str(trials), "--seed", "0"]
    argv += ["--max-concurrent", "2", "--storage-path", str(work / "ray_results"), "--warm-start", "off"]
    start = time.perf_counter()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with redirect_stdout(io.StringIO()):
        run_search(parse_args(argv))
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)  # one search, in this process
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(f"{one_search(args.variant, args.trials, args.work):.2f}")
        return
    walls: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for _ in range(args.repeats):
        for variant in VARIANTS:
            work = Path(tempfile.mkdtemp(prefix="bench-patches-"))
            command = [sys.executable, __file__, "--variant", variant, "--trials", str(args.trials)]
            command += ["--work", str(work)]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=True)
            walls[variant].append(float(done.stdout.split()[-1]))
            print(f"{variant}: {walls[variant][-1]:.1f} s", flush=True)
    print(f"\n`python benchmarks/tune_patches.py --trials {args.trials} --repeats {args.repeats}`\n")
    print("| variant | wall s (median) | min-max | vs patched |\n| --- | --- | --- | --- |")
    base = statistics.median(walls["patched"])
    for variant, times in walls.items():
        median = statistics.median(times)
        print(f"| {variant} | {median:.1f} | {min(times):.1f}-{max(times):.1f} | {median / base:.2f}x |")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
