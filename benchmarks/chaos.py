"""A search on a cluster that breathes, against the same search undisturbed, in the same run.

On `cluster/local.py up --workers 3`: first the search alone (`--scheduler asha`, 5 folds, cheap families, digits),
then the same search while a loop, from its first finished trial on (before it, a kill only delays the start),
kills a random worker node every `--kill-every` seconds (kill to kill) and starts a replacement (`add-worker`)
beside it, and the MLflow server is restarted once. Then it checks: exactly N trial runs, each FINISHED
(completed, or stopped by ASHA), no duplicate trial_index, none failed (none ran out of max_failures with its lost
attempts), the parent's counts right; and reports the wall times (target: chaos <= 1.5x calm) and the folds fitted
again per lost attempt (target <= 1: with a checkpoint per reported fold only the fold in progress is lost).
It prints a row of BENCHMARKS.md's chaos table; `tests/chaos/test_chaos.py` runs the disturbed search alone.

    python benchmarks/chaos.py --trials 200 --kill-every 20 [--kill hard|drain] [--dataset digits]

`--kill hard` (default) SIGKILLs every process of the node, a machine gone without notice; `--kill drain` drains
it first (`remove-worker --grace 2`).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.compare import start_cluster, stop_cluster  # noqa: E402
from cluster.local_steps import process_env, write_state  # noqa: E402
from cluster.local_workers import kill_hard, state_lock, stop_worker  # noqa: E402
from cluster.processes import stop_process_group  # noqa: E402
from search.common import contract as c  # noqa: E402

LOCAL = [sys.executable, str(ROOT / "cluster" / "local.py")]
MODELS = "knn,logistic_regression,svm"


def local(state_dir: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([*LOCAL, args[0], "--state-dir", str(state_dir), *args[1:]], capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"local.py {args[0]} failed: {result.stderr[-2000:]}")
    return result


def state_of(state_dir: Path) -> dict:
    return json.loads((state_dir / "state.json").read_text())


def restart_mlflow(state_dir: Path) -> None:
    """Stop the cluster's MLflow server and start it again with its recorded command, 5 s later."""
    state = state_of(state_dir)
    entry = next(p for p in state["processes"] if p["name"] == "mlflow")
    stop_process_group(entry["pid"])
    time.sleep(5)  # the fault itself: how long the server stays away
    with open(entry["log"], "ab") as log:
        process = subprocess.Popen(entry["command"], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=process_env(state), start_new_session=True)  # fmt: skip
    with state_lock(state_dir):
        state = state_of(state_dir)
        next(p for p in state["processes"] if p["name"] == "mlflow")["pid"] = process.pid
        write_state(state_dir, state)


def trials_ended(uri: str, experiment: str) -> int:
    """Trial runs of `experiment` that have ended (0 while it does not exist or the server is away)."""
    from mlflow.tracking import MlflowClient

    try:
        found = MlflowClient(uri).get_experiment_by_name(experiment)
        query = f"tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}' and attributes.status = 'FINISHED'"
        return len(MlflowClient(uri).search_runs([found.experiment_id], query, max_results=10)) if found else 0
    except Exception:  # noqa: BLE001 - not yet
        return 0


def chaos_loop(state_dir: Path, every: float, mode: str, stop: threading.Event, log: list[str], started) -> None:
    """Once the search's first trial has ended (`started()`), every `every` seconds (from one kill to the next) kill
    (or drain away) a random worker that has joined; a replacement is added, and MLflow restarted once, beside the
    loop."""
    rng, helpers, restarted = random.Random(0), [], False

    def aside(name: str, step) -> threading.Thread:  # a step beside the loop, its end (or failure) in the log
        def run() -> None:
            try:
                step()
                log.append(f"{time.strftime('%X')} {name}")
            except BaseException as exc:  # noqa: BLE001 - SystemExit from local() included: the log says it
                log.append(f"{time.strftime('%X')} {name} failed: {exc}")

        helpers.append(threading.Thread(target=run))
        helpers[-1].start()
        return helpers[-1]

    while not stop.is_set() and not started():
        stop.wait(0.5)
    due, adding = time.monotonic() + every, None
    while not stop.wait(max(0.0, due - time.monotonic())):
        due += every
        if adding:  # a worker still starting is not a victim: its add-worker would fail, not the search
            adding.join()
        workers = [p["name"] for p in state_of(state_dir)["processes"] if p["name"].startswith("ray-worker-")]
        victim = rng.choice(workers)
        if mode == "hard":
            kill_hard(state_of(state_dir), victim)
            with state_lock(state_dir):  # forget it: its processes are gone
                state = state_of(state_dir)
                stop_worker(state, int(victim.rsplit("-", 1)[1]))
                state["workers"] -= 1
                write_state(state_dir, state)
        else:
            local(state_dir, "remove-worker", "--worker", victim.rsplit("-", 1)[1], "--grace", "2")
        log.append(f"{time.strftime('%X')} {mode} {victim}")
        adding = aside("worker added", lambda: local(state_dir, "add-worker"))
        if not restarted:
            restarted = True
            aside("mlflow restarted", lambda: restart_mlflow(state_dir))
    for helper in helpers:
        helper.join()


def search(env: dict, experiment: str, args, folder: Path, timeout: float = 3600) -> tuple[float, str]:
    """Run the search as a driver process, its output in `folder`/driver.log; (wall seconds, search id)."""
    argv = ["--experiment", experiment, "--num-samples", str(args.trials), "--scheduler", "asha", "--cv-folds", "5"]
    argv += ["--dataset", args.dataset, "--models", MODELS, "--seed", "7", "--storage-path", str(folder)]
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "driver.log"
    start = time.perf_counter()
    with open(log, "w") as out:
        command = [sys.executable, str(ROOT / "search" / "run.py"), *argv]
        run = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder,
                               start_new_session=True)  # fmt: skip
        try:
            run.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stop_process_group(run.pid)
            raise SystemExit(f"search {experiment} did not end within {timeout:.0f} s: see {log}") from None
    text = log.read_text()
    if run.returncode != 0:
        raise SystemExit(f"search {experiment} failed (exit {run.returncode}): see {log}\n{text[-2000:]}")
    return time.perf_counter() - start, re.search(r"^search_id: (\w+)$", text, re.M)[1]


def check(uri: str, experiment: str, search_id: str, trials: int) -> dict:
    """What the issue checks, and the figures: lost attempts, counted failures, folds redone."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment).experiment_id
    runs = client.search_runs([exp], f"tags.{c.SEARCH_ID} = '{search_id}'", max_results=5000)
    trial_runs = [r for r in runs if r.data.tags[c.RUN_TYPE] == c.TRIAL_RUN]
    parent = next(r for r in runs if r.data.tags[c.RUN_TYPE] == c.SEARCH_RUN)
    indices = sorted(int(r.data.tags[c.TRIAL_INDEX]) for r in trial_runs)
    problems = []
    if indices != list(range(trials)):
        problems.append(f"trial indices: {len(indices)} runs, {len(set(indices))} distinct, want {trials}")
    bad = {r.info.run_name: r.data.tags.get("error", "")[-160:] for r in trial_runs
           if r.info.status != "FINISHED" or r.data.tags.get(c.OUTCOME) not in (c.COMPLETED, c.STOPPED)}  # fmt: skip
    if bad:
        problems.append(f"not FINISHED completed/stopped: {dict(list(bad.items())[:3])}")
    m = parent.data.metrics
    outcomes = [r.data.tags.get(c.OUTCOME) for r in trial_runs]
    if (m.get(c.TRIALS_FINISHED), m.get(c.TRIALS_STOPPED), m.get(c.TRIALS_FAILED)) != (
        outcomes.count(c.COMPLETED), outcomes.count(c.STOPPED), 0):  # fmt: skip
        problems.append(f"parent counts {m} against the runs")
    lost = [r for r in trial_runs if c.LOST_ATTEMPTS in r.data.tags]
    tag = lambda r, k: int(r.data.tags.get(k, 0))  # noqa: E731
    counted = {r.info.run_name: r.data.tags.get(f"{c.LOST_ATTEMPT}_1", "")[-160:] for r in lost
               if r.data.tags.get(c.OUTCOME) == c.FAILED}  # fmt: skip
    if counted:  # its lost attempts used up max_failures
        problems.append(f"trials failed by their lost attempts: {dict(list(counted.items())[:3])}")
    return {"problems": problems, "lost_attempts": sum(tag(r, c.LOST_ATTEMPTS) for r in lost),
            "trials_hit": len(lost), "failures_counted": len(counted),
            "folds_redone": sum(tag(r, c.FOLDS_REDONE) for r in lost),
            "folds_restored": sum(tag(r, c.FOLDS_RESTORED) for r in lost),
            "nodes_used": m.get(c.NODES_USED)}  # fmt: skip


def cluster_env(state_dir: Path) -> dict[str, str]:
    """`cluster/local.py up --workers 3` (its state in `state_dir`); an environment for drivers on it, with its
    MLflow server and none of the caller's Ray or MLflow variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_"))}
    cluster = start_cluster(state_dir, workers=3, tracking=True)
    return env | cluster | {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def disturbed_search(state_dir: Path, env: dict, args, folder: Path, timeout: float) -> tuple[float, dict, list[str]]:
    """The search (experiment `chaos-wild`) while the chaos loop runs; (wall seconds, `check`'s figures, what the
    loop did)."""
    uri, log, stop = env["MLFLOW_TRACKING_URI"], [], threading.Event()
    started = lambda: trials_ended(uri, "chaos-wild") > 0  # noqa: E731
    loop = threading.Thread(target=chaos_loop, args=(state_dir, args.kill_every, args.kill, stop, log, started))
    loop.start()
    try:
        wild, wild_id = search(env, "chaos-wild", args, folder, timeout=timeout)
    finally:
        stop.set()
        loop.join()
    figures = check(uri, "chaos-wild", wild_id, args.trials)
    figures["kills"] = sum(f" {args.kill} " in entry for entry in log)
    return wild, figures, log


def folds_again_per_lost_attempt(figures: dict) -> float:
    """Folds fitted again per lost attempt: each loses at most its fold in progress (target <= 1)."""
    lost = figures["lost_attempts"]
    return (figures["folds_redone"] + lost) / lost if lost else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--kill-every", type=float, default=20)
    parser.add_argument("--kill", choices=("hard", "drain"), default="hard")
    parser.add_argument("--dataset", default="digits", help="digits: trials long enough for the kills to land")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-chaos-"))
    env = cluster_env(state_dir := work / "state")
    try:
        calm, _ = search(env, "chaos-calm", args, work / "calm")
        print(f"calm: {calm:.1f} s", flush=True)
        wild, figures, log = disturbed_search(state_dir, env, args, work / "wild", timeout=5 * calm)
        print(f"chaos: {wild:.1f} s; " + "; ".join(log), flush=True)
    finally:
        stop_cluster(state_dir)
    command = f"python benchmarks/chaos.py --trials {args.trials} --dataset {args.dataset}"
    flags = f"--kill-every {args.kill_every:g} --kill {args.kill}"
    text = "\n".join([
        f"`{command}` with the flags of each row (calm: the same search alone)", "",
        "| flags | calm s | chaos s | vs calm | kills | attempts lost | counted failures | folds restored "
        "| folds redone | folds fitted again per lost attempt | nodes used | checks |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        f"| `{flags}` | {calm:.1f} | {wild:.1f} | {wild / calm:.2f}x | {figures['kills']} | {figures['lost_attempts']} "
        f"| {figures['failures_counted']} | {figures['folds_restored']} | {figures['folds_redone']} "
        f"| {folds_again_per_lost_attempt(figures):.2f} | {figures['nodes_used']:.0f} "
        f"| {'; '.join(figures['problems']) or 'all pass'} |",
    ])  # fmt: skip
    print("\n" + text)
    if figures["problems"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
