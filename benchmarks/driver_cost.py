"""Does the driver's cost per trial stay flat as a search grows? Cheap trials, 100 to 2,000 of them.

    python benchmarks/driver_cost.py --sizes 100,500,2000 --write BENCHMARKS.md

Each size is one real search (k-nearest neighbours on Iris, 2 folds: a trial is a few milliseconds of fitting)
tracked in a private `mlflow server`. Driver CPU is this process's CPU time (Optuna sampling, Tune's bookkeeping,
the tracking writer), divided by the number of trials.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
from contextlib import redirect_stdout
from pathlib import Path

from benchmarks.compare import write_section
from cluster.processes import free_port, stop_process_group, wait_for_http

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,500,2000")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()

    import ray

    from search.config import parse_args
    from search.run import run_search

    work = Path(tempfile.mkdtemp(prefix="driver-cost-"))
    port = free_port()
    command = [sys.executable, str(ROOT / "cluster/mlflow_server.py"), "--port", str(port), "--data-dir", str(work)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    rows = ["| trials | wall s | wall ms per trial | driver CPU ms per trial |", "|---|---|---|---|"]
    try:
        assert wait_for_http(f"{uri}/health", 90), "mlflow server did not start"
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        for size in [int(n) for n in args.sizes.split(",")]:
            argv = ["--tracking-uri", uri, "--experiment", f"driver-cost-{size}", "--num-samples", str(size)]
            argv += ["--models", "knn", "--feature-sets", "basic", "--cv-folds", "2", "--max-concurrent", "2"]
            argv += ["--storage-path", str(work / f"tune-{size}")]
            cpu, wall = time.process_time(), time.perf_counter()
            with redirect_stdout(io.StringIO()):
                run_search(parse_args(argv))
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            rows.append(f"| {size} | {wall:.0f} | {1000 * wall / size:.0f} | {1000 * cpu / size:.0f} |")
            print(rows[-1], flush=True)
    finally:
        ray.shutdown()
        stop_process_group(server.pid)
    text = f"`python benchmarks/driver_cost.py {' '.join(sys.argv[1:])}`\n\n" + "\n".join(rows)
    print(text)
    if args.write:
        write_section(args.write, "driver-cost", text)


if __name__ == "__main__":
    main()
