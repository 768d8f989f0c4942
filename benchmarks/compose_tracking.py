"""What a login costs on an MLflow server with the basic-auth app: median latency of authenticated requests
against anonymous ones, side by side in one run; with `--search`, a cheap search on the compose cluster against
the same search on `cluster/local.py`.

    eval "$(docker compose exec -T ray-head python cluster/credentials.py show)"
    python benchmarks/compose_tracking.py --tracking-uri http://127.0.0.1:5000          # the compose MLflow
    python benchmarks/compose_tracking.py --tracking-uri http://127.0.0.1:5000 --search  # and the searches
    python benchmarks/compose_tracking.py --local                                        # a local server it starts

With `--local` it starts `cluster/mlflow_server.py --basic-auth` (SQLite, a generated password) on a free
loopback port, measures, and stops it by PID: once with the project's login cache, once with
it off. `--search` (run from the compose project's folder, started with `--scale ray-worker=2`) times a 100-trial
search (`--models logistic_regression --feature-sets basic`) in the compose head, logins on, then the same search
on a `cluster/local.py up --workers 2` it starts on free ports (no logins) and stops, `--repeats` times each.
Prints one JSON line per measurement: medians and 90th percentiles in ms, wall times in s.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from cluster.processes import free_port, stop_processes, wait_for_http

ROOT = Path(__file__).resolve().parents[1]
API = "/api/2.0/mlflow/experiments/search?max_results=1"
CHEAP = ["--models", "logistic_regression", "--feature-sets", "basic", "--num-samples", "100", "--warm-start", "off"]


def timed(url: str, headers: dict[str, str]) -> float:
    """Milliseconds of one GET (any HTTP answer counts: a 401 is the anonymous request's answer)."""
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        exc.read()
    return (time.perf_counter() - started) * 1000


def measure(uri: str, user: str, password: str, n: int) -> dict[str, float]:
    """Median and p90 of `n` requests of each kind, interleaved so that load changes hit all kinds alike."""
    login = {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    kinds = {"anonymous_health": (uri + "/health", {}), "anonymous_api": (uri + API, {})}
    kinds["login_api"] = (uri + API, login)
    timed(uri + API, login)  # the first login pays the key derivation once; the cache then holds it
    samples: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(n):
        for kind, (url, headers) in kinds.items():
            samples[kind].append(timed(url, headers))
    out = {}
    for kind, values in samples.items():
        out[f"{kind}_median_ms"] = round(statistics.median(values), 2)
        out[f"{kind}_p90_ms"] = round(statistics.quantiles(values, n=10)[-1], 2)
    out["login_minus_anonymous_median_ms"] = round(out["login_api_median_ms"] - out["anonymous_api_median_ms"], 2)
    return out


def local_server(folder: Path, password: str, cache_s: int) -> tuple[subprocess.Popen, str]:
    """A basic-auth server of cluster/mlflow_server.py (logins cached `cache_s` s) on a free loopback port."""
    port = free_port()
    env = {**os.environ, "MLFLOW_AUTH_ADMIN_PASSWORD": password, "MLFLOW_TRACKING_USERNAME": "admin",
           "MLFLOW_AUTH_CACHE_TTL_S": str(cache_s)}  # fmt: skip
    argv = [sys.executable, str(ROOT / "cluster/mlflow_server.py"), "--port", str(port), "--data-dir", str(folder)]
    process = subprocess.Popen([*argv, "--basic-auth"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_http(f"http://127.0.0.1:{port}/health", timeout=120)
    return process, f"http://127.0.0.1:{port}"


def timed_search(argv: list[str], env: dict[str, str] | None = None) -> float:
    """Wall seconds of one search command, from the host; its output is checked, not shown."""
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        sys.exit(f"compose_tracking: {' '.join(argv[:6])}... failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - started


def local_cluster_search(folder: Path, workers: int, seed: int) -> float:
    """The cheap search on a `cluster/local.py up --workers N` on free ports in `folder`; stopped afterwards."""
    state = folder / "cluster"
    ports = [f"--{name}-port={free_port()}" for name in ("mlflow", "ray", "dashboard", "ray-client")]
    local = [sys.executable, str(ROOT / "cluster/local.py")]
    subprocess.run([*local, "--state-dir", str(state), "up", "--workers", str(workers), *ports],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_TRACKING_"))}  # compose's
        env.update(re.findall(r"^export (\w+)=(.+)$", (state / "env.sh").read_text(), re.M))
        argv = [sys.executable, str(ROOT / "search/run.py"), *CHEAP, "--seed", str(seed)]
        return timed_search([*argv, "--experiment", "bench_search", "--storage-path", str(folder / "ray")], env)
    finally:
        subprocess.run([*local, "--state-dir", str(state), "down"], capture_output=True, timeout=300)


def compare_searches(repeats: int, workers: int) -> dict[str, float]:
    """Wall seconds of the cheap search on compose (in the head) and on a local cluster, alternated."""
    compose = ["docker", "compose", "exec", "-T", "ray-head", "python", "search/run.py", *CHEAP]
    times: dict[str, list[float]] = {"compose_search_s": [], "local_cluster_search_s": []}
    for seed in range(repeats):
        times["compose_search_s"].append(timed_search([*compose, "--seed", str(seed), "--experiment", "bench_search"]))
        with tempfile.TemporaryDirectory() as folder:
            times["local_cluster_search_s"].append(local_cluster_search(Path(folder), workers, seed))
    out = {k: round(statistics.median(v), 1) for k, v in times.items()}
    out["compose_over_local"] = round(out["compose_search_s"] / out["local_cluster_search_s"], 2)
    return out


def main() -> None:
    """Parse, measure, print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI"))
    parser.add_argument("--local", action="store_true", help="start a local basic-auth server and measure it")
    parser.add_argument("-n", type=int, default=100, help="requests of each kind (default 100)")
    parser.add_argument("--search", action="store_true", help="also time the cheap search: compose against local")
    parser.add_argument("--repeats", type=int, default=2, help="searches of each kind (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker nodes of the local cluster (default 2)")
    args = parser.parse_args()
    if args.local:
        password = secrets.token_urlsafe(24)
        for cache_s in (60, 0):  # the project's setting, then the baseline: every login checked afresh
            with tempfile.TemporaryDirectory() as folder:
                process, uri = local_server(Path(folder), password, cache_s)
                try:
                    result = measure(uri, "admin", password, args.n)
                finally:
                    stop_processes([process.pid])
            print(json.dumps({"server": f"local basic-auth, logins cached {cache_s} s", **result}))
        return
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if not (args.tracking_uri and user and password):
        sys.exit("compose_tracking: give --tracking-uri and the login (eval the output of credentials.py show)")
    print(json.dumps({"server": args.tracking_uri, **measure(args.tracking_uri.rstrip("/"), user, password, args.n)}))
    if args.search:
        searches = compare_searches(args.repeats, args.workers)
        print(json.dumps({"search": "100 trials, logistic_regression/basic", **searches}))


if __name__ == "__main__":
    main()
