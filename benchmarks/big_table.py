"""A big table end to end: a generated 1M-row table searched on `cluster/local.py up --workers 2` with a time budget,
then released and reported, while the machine's memory is sampled.

    python benchmarks/big_table.py                                   # 1M rows, CSV, --time-budget 120s
    python benchmarks/big_table.py --format parquet --rows 200000    # smaller, Parquet
    python benchmarks/big_table.py stages --rows 1000000             # one process: memory and time of each stage

The table (seeded): `--numeric` numeric columns (a few with missing values), three text columns (a colour, a region,
a tier; a few missing) and a two-class text label (`--plain`: the numbers alone, none missing), written as CSV or
Parquet into a temporary folder (`--data-dir` keeps it between runs; never inside the project). The search is
`search/run.py --dataset <file> --target label --time-budget 120s` (and `--search`'s flags) run as a user runs it,
with the exports of a cluster started for it by `cluster/local.py up` into a temporary state folder and stopped by
its own `down`.

Every 0.5 s the benchmark reads the memory of the cluster's processes and the driver's (psutil: the sum of their
PSS, which counts a page shared by several processes, as Ray's object store is, once; their RSS and USS too) and of
the machine (total less available, which counts shared memory). It prints the growth over the idle cluster at its
peak, in GiB and in copies of the table (its size as pandas reads it: its deep memory usage), the times of
reading and digesting the table, of Tune's loop and of what follows, and the trials finished at full fidelity
(every fold of every row); then times `search/release.py` (and counts the fits of the chosen model inside it) and
`search/report.py`.

`stages` runs the steps of a search's data path in this one process, without Ray's cluster, and says what each
adds to its memory (USS) and how long it takes: where the copies come from.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET = "label"
COLOURS = ("red", "green", "blue", "black", "white", "silver", "yellow")
REGIONS = tuple(f"region-{i:02d}" for i in range(25))
TIERS = ("bronze", "silver", "gold", "platinum")
GIB = 1024**3


# ---------------------------------------------------------------- the table


def generate(path: Path, rows: int, numeric: int, seed: int, plain: bool = False) -> Path:
    """Write the seeded table to `path` (.csv or .parquet): `numeric` numbers (every fourth column with 3% missing),
    three text columns with a few missing, and the label, which the numbers and the texts both inform; `plain`:
    the numbers alone, none missing (a table that needs no preparation)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    logit = np.zeros(rows)
    weights = rng.normal(0, 1, numeric) * (rng.random(numeric) < 0.5)  # half the numbers inform the label
    for j in range(numeric):
        scale, offset = 10 ** rng.uniform(-1, 3), rng.normal(0, 100)
        z = rng.standard_normal(rows)
        logit += weights[j] * z / np.sqrt(numeric / 4)
        values = np.round(offset + scale * z, 4)
        mask = rng.random(rows) < 0.03 if j % 4 == 0 and not plain else None
        columns[f"x{j:02d}"] = pa.array(values, mask=mask)
    texts = (("colour", COLOURS, 0.01), ("region", REGIONS, 0.02), ("tier", TIERS, 0.0))
    for name, choices, missing in texts if not plain else ():
        codes = rng.integers(0, len(choices), rows)
        logit += (rng.normal(0, 0.5, len(choices)))[codes]
        mask = rng.random(rows) < missing if missing else None
        columns[name] = pa.DictionaryArray.from_arrays(
            pa.array(codes, type=pa.int32(), mask=mask), pa.array(choices)
        ).cast(pa.string())
    label = np.where(logit + rng.logistic(0, 1, rows) > 0.5, "yes", "no")
    columns[TARGET] = pa.array(label)
    table = pa.table(columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        pq.write_table(table, path)
    else:
        pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
    return path


def table_file(args) -> Path:
    """The table's file, generated once into `--data-dir` (or a temporary folder)."""
    folder = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="big-table-"))
    suffix = "parquet" if args.format == "parquet" else "csv"
    path = folder / f"big_{args.rows}x{args.numeric}{'_plain' if args.plain else ''}_s{args.seed}.{suffix}"
    if not path.is_file():
        started = time.perf_counter()
        generate(path, args.rows, args.numeric, args.seed, args.plain)
        print(f"generated {path} ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - started:.1f} s")
    return path


def table_bytes(path: Path) -> int:
    """One copy of the table: its size in memory as the search reads it (pandas' deep memory usage)."""
    from trainables.data import load_dataset

    data = load_dataset(str(path), TARGET)
    return int(data.X.memory_usage(deep=True).sum() + data.y.memory_usage(deep=True))


def reference_bytes(path: Path) -> int:
    """One copy of the table: its size in memory as pandas reads it with its defaults (deep memory usage), the same
    measure whatever the project reads it with."""
    import pandas as pd

    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return int(frame.memory_usage(deep=True).sum())


# ---------------------------------------------------------------- memory


def trim() -> None:
    """Hand what this process freed back to the system (Arrow's pool, glibc's malloc_trim)."""
    import ctypes

    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def uss(pid: int | None = None) -> int:
    """Unique set size of a process (this one by default)."""
    return psutil.Process(pid).memory_full_info().uss


class Peak:
    """The highest USS of this process while the context runs, sampled every 20 ms."""

    def __enter__(self) -> Peak:
        self.start, self.top, self.done = uss(), 0, threading.Event()
        self.began = time.perf_counter()

        def watch() -> None:
            while not self.done.wait(0.02):
                self.top = max(self.top, uss())

        self.thread = threading.Thread(target=watch, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.began
        self.done.set()
        self.thread.join()
        self.end = uss()
        self.top = max(self.top, self.end)


# ---------------------------------------------------------------- stages, in one process


class Enough(Exception):
    """Ends a cross-validation after the folds a stage measures."""


def trial_config(model: str, folds: int, seed: int) -> dict:
    """A trial config of `model` at its defaults on the basic feature set."""
    from search.common import contract as c
    from trainables.models import defaults

    return {c.MODEL: model, c.FEATURE_SET: "basic", model: defaults()[model], c.SEED: seed, c.CV_FOLDS: folds}


def stages(args) -> None:
    """The data path of a search, stage by stage in this process: seconds, and this process's memory at each stage's
    peak and after it, in copies of the table (USS), above where the driver's stages started (a trial's: above where
    the trial started)."""
    import gc

    from search.common import mlflow_records as mr
    from trainables import data as d
    from trainables.trainable import cross_validate, pipeline_for

    path = table_file(args)
    copy = reference_bytes(path)
    print(f"table {path.name}: one copy is {copy / 2**20:.0f} MiB in memory (pandas' deep memory usage)")
    print("copies of the table above this process's memory before the stage (USS): at its peak, and held after it")
    rows: list[tuple[str, float, float, float]] = []
    gc.collect()
    base = uss()

    def stage(name: str, fn, since: int | None = None):
        gc.collect()
        start = base if since is None else since
        with Peak() as p:
            result = fn()
        gc.collect()
        rows.append((name, p.seconds, (p.top - start) / copy, (uss() - start) / copy))
        print(f"  {name:<48} {p.seconds:6.1f} s  peak {rows[-1][2]:5.2f}  held {rows[-1][3]:5.2f}", flush=True)
        return result

    frame = stage("read the file alone", lambda: d._read_table(path))
    del frame
    trim()  # what reading alone left with the allocators, so that the next stage starts where this one did
    data = stage("load_dataset (read, roles, digest)", lambda: d.load_dataset(str(path), TARGET))
    stage("  its digest again, alone", lambda: d.digest_of(data.X, data.y))
    split = stage("split_dataset", lambda: d.split_dataset(data, 0.2, args.seed))
    stage("MLflow dataset records (both parts)", lambda: [
        mr.data_part(split.X_dev, split.y_dev, "dev", "training", str(path)),
        mr.data_part(split.X_test, split.y_test, "test", "testing", str(path)),
    ])  # fmt: skip
    shipped = stage("trial inputs serialised (pickle 5)", lambda: shipped_form(split))
    inband = sum(len(blob) for blob, _ in shipped.values()) / copy
    outband = sum(memoryview(b).nbytes for _, bufs in shipped.values() for b in bufs) / copy
    print(f"    in the pickle stream {inband:.3f} copies (copied by every reader), out of band {outband:.3f}")
    print("a trial, above its process's memory with the development part read:")
    given = stage("trial inputs deserialised (what a trial gets)", lambda: received_form(shipped), uss())
    X, y = (value.frame() if hasattr(value, "frame") else value for value in (given["X"], given["y"]))
    config = trial_config(args.model, args.cv_folds, args.seed)

    def folds(n: int):
        def on_fold(progress):
            if progress.done >= n:
                raise Enough

        def run():
            try:
                cross_validate(config, X, y, on_fold=on_fold, roles=split.roles)
            except Enough:
                pass

        return run

    stage(f"a trial's first fold ({args.model})", folds(1), uss())
    stage(f"a trial's first two folds ({args.model})", folds(2), uss())
    stage(f"the release's fit on the development part ({args.model})",
          lambda: pipeline_for(config, split.roles).fit(split.X_dev, split.y_dev), uss())  # fmt: skip
    print(json.dumps({"copy_bytes": copy, "stages": rows}))


def shipped_form(split) -> dict[str, tuple[bytes, list]]:
    """What `tune.with_parameters` puts in the object store for a trial (`make_trainable`'s arguments), pickled
    as Ray pickles them (protocol 5): the stream and its out-of-band buffers."""
    import pickle

    from search.searching import tuning

    inputs = tuning.trial_data(split) if hasattr(tuning, "trial_data") else {"X": split.X_dev, "y": split.y_dev}
    out = {}
    for name, value in inputs.items():
        buffers: list = []
        out[name] = (pickle.dumps(value, protocol=5, buffer_callback=buffers.append), buffers)
    return out


def received_form(shipped: dict[str, tuple[bytes, list]]) -> dict:
    """The trial's view of what was shipped: unpickled over read-only buffers, as Ray hands out the object store's."""
    import pickle

    return {
        name: pickle.loads(blob, buffers=[memoryview(b.raw()).toreadonly() for b in bufs])
        for name, (blob, bufs) in shipped.items()
    }


# ---------------------------------------------------------------- the search on a local cluster


def role_of(process: psutil.Process, driver: set[int]) -> str:
    """What a process of the benchmark does: the driver (the search command and its children), the MLflow server,
    a trial worker (or an idle one), a raylet (each node's object store lives in it), or Ray's other processes (its
    spill workers among them)."""
    if process.pid in driver:
        return "driver"
    command, name = " ".join(process.cmdline()), process.name()
    if "mlflow" in command:
        return "MLflow server"
    if name == "raylet" or command.split(" ", 1)[0].endswith("/raylet"):  # its command line names the workers'
        return "raylets"
    if name.startswith(("ray::ImplicitFunc", "ray::train")) or (name == "ray::IDLE" or "default_worker.py" in command):
        return "trial workers"
    return "Ray's other"


@dataclass
class Memory:
    """Memory samples every 0.5 s: the cluster's and the driver's processes (PSS, RSS, USS summed) and the machine
    (total less available); the idle cluster's as the baseline."""

    state_dir: Path
    driver: int | None = None
    samples: list[dict] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def pids(self) -> tuple[list[int], set[int]]:
        from cluster.local_steps import live_pids, read_state

        state = read_state(self.state_dir) or {}
        driver: set[int] = set()
        if self.driver is not None:
            try:
                leader = psutil.Process(self.driver)
                driver = {leader.pid, *(p.pid for p in leader.children(recursive=True))}
            except psutil.Error:
                pass
        return sorted(set(live_pids(state)) | driver), driver

    def read(self) -> dict:
        pids, driver = self.pids()
        sample = {"t": time.monotonic(), "pss": 0, "rss": 0, "uss": 0, "roles": {}}
        for pid in pids:
            try:
                process = psutil.Process(pid)
                info = process.memory_full_info()
                role = role_of(process, driver)
            except psutil.Error:
                continue
            for key in ("pss", "rss", "uss"):
                sample[key] += getattr(info, key)
            sample["roles"][role] = sample["roles"].get(role, 0) + info.pss
            sample.setdefault("count", {})[role] = sample.get("count", {}).get(role, 0) + 1
        vm = psutil.virtual_memory()
        sample["system"] = vm.total - vm.available
        return sample

    def baseline(self, seconds: float = 3.0) -> dict:
        readings = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            readings.append(self.read())
            time.sleep(0.5)
        base = {k: float(np.median([r[k] for r in readings])) for k in ("pss", "rss", "uss", "system")}
        roles = {role for r in readings for role in r["roles"]}
        return base | {"roles": {role: float(np.median([r["roles"].get(role, 0) for r in readings])) for role in roles}}

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append(self.read())
            self.stop.wait(0.5)

    def peak(self, base: dict, key: str) -> tuple[float, dict]:
        top = max(self.samples, key=lambda s: s[key])
        return top[key] - base[key], top


def start_cluster(state_dir: Path, args) -> dict[str, str]:
    """`cluster/local.py up --workers N` into `state_dir` on free ports, as a user starts it; its exports."""
    from cluster.local_steps import exports
    from cluster.processes import free_port

    ports = [x for name in ("mlflow", "ray", "dashboard", "ray-client") for x in (f"--{name}-port", str(free_port()))]
    command = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), "up"]
    command += ["--workers", str(args.workers), *ports, *args.cluster_args]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return exports(json.loads((state_dir / "state.json").read_text()))


def stop_cluster(state_dir: Path) -> None:
    """The cluster's own `down`."""
    down = [sys.executable, str(ROOT / "cluster/local.py"), "--state-dir", str(state_dir), "down"]
    subprocess.run(down, check=False, stdout=subprocess.DEVNULL, cwd=ROOT)


def timed(command: list[str], env: dict[str, str], cwd: Path, log: Path) -> tuple[float, int, str, list]:
    """Run `command`, its output into `log`; (seconds, exit code, output, (seconds, line) as each line came)."""
    started = time.monotonic()
    lines = []
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for line in process.stdout:
            lines.append((time.monotonic() - started, line.rstrip()))
            out.write(line)
        code = process.wait()
    return time.monotonic() - started, code, log.read_text(), lines


RELEASE_STEPS = (  # the release's lines that end its steps (search/releasing/flow.py)
    ("choose", "releasing from experiment"),
    ("read, split, fit, score", "test part ("),
    ("log the model, register", "registered "),
    ("MLflow's evaluation", "@"),
    ("card", "model card:"),
)


def release_steps(lines: list) -> dict[str, float]:
    """Seconds of each step of the release, from when its lines came."""
    steps, last = {}, 0.0
    for name, start in RELEASE_STEPS:
        at = next((t for t, line in lines if line.startswith(start)), None)
        if at is not None:
            steps[name], last = at - last, at
    return steps


def search(args, path: Path, env: dict[str, str], work: Path, memory: Memory) -> dict:
    """`search/run.py` against the cluster while `memory` samples; what it took."""
    command = [sys.executable, str(ROOT / "search/run.py"), "--dataset", str(path), "--target", TARGET]
    command += ["--time-budget", args.time_budget, "--seed", str(args.seed), "--warm-start", "off"]
    command += ["--storage-path", str(work / "ray_results"), *args.search_args]
    log = work / "search.log"
    with open(log, "w") as out:
        started = time.monotonic()
        wall_start = time.time()
        driver = subprocess.Popen(command, env=env, cwd=work, stdout=out, stderr=subprocess.STDOUT)
        memory.driver = driver.pid
        watcher = threading.Thread(target=memory.run, daemon=True)
        watcher.start()
        code = driver.wait()
        wall = time.monotonic() - started
        memory.stop.set()
        watcher.join()
    text = log.read_text()
    found = re.search(r"^search ([0-9a-f]{12}): experiment '([^']+)'", text, re.M)
    if found is None:  # exit 1 with a search id: it ran, and no trial finished in the budget
        raise SystemExit(f"big_table: the search failed ({code}):\n{text[-3000:]}")
    return {"wall_s": wall, "wall_start": wall_start, "search_id": found[1], "exit": code, "log": text}


def trial_times(uri: str, found: dict) -> dict:
    """From MLflow: when the parent run started, the trials' span (Tune's loop), and the trials by outcome."""
    from mlflow import MlflowClient

    from search.common.lookup import find_search, search_trials

    client = MlflowClient(uri)
    parent = find_search(client, found["search_id"])
    trials = search_trials(client, parent.info.experiment_id, found["search_id"])
    t0 = found["wall_start"]
    starts = [t.run.info.start_time / 1000 for t in trials] or [t0 + found["wall_s"]]
    ends = [(t.run.info.end_time or 0) / 1000 for t in trials] or starts
    outcomes: dict[str, int] = {}
    for t in trials:
        outcomes[t.outcome] = outcomes.get(t.outcome, 0) + 1
    return {
        "parent_run_s": parent.info.start_time / 1000 - t0,
        "before_loop_s": min(starts) - t0,
        "loop_s": max(ends) - min(starts),
        "after_loop_s": found["wall_s"] - (max(ends) - t0),
        "outcomes": outcomes,
        "completed": outcomes.get("completed", 0),
        "best": max((t.metrics.get("val_accuracy", float("nan")) for t in trials if t.outcome == "completed"),
                    default=float("nan")),
    }  # fmt: skip


def count_fits(argv: list[str]) -> None:
    """Run `search/release.py argv` in this process, counting the fits of whole Pipelines and their seconds."""
    import atexit

    from sklearn.pipeline import Pipeline

    fits, depth = [], [0]
    original = Pipeline.fit

    def counted(self, X, y=None, **params):
        depth[0] += 1
        started = time.perf_counter()
        try:
            return original(self, X, y, **params)
        finally:
            depth[0] -= 1
            if depth[0] == 0:
                fits.append(time.perf_counter() - started)

    Pipeline.fit = counted
    atexit.register(lambda: print("FITS " + json.dumps(fits), flush=True))
    sys.argv = ["search/release.py", *argv]
    from search import release

    sys.exit(release.main(argv))


def release_and_report(uri: str, found: dict, env: dict[str, str], work: Path) -> dict:
    """Time `search/release.py` (its fits counted) and `search/report.py` for the search."""
    where = ["--search-id", found["search_id"], "--tracking-uri", uri]
    release = [sys.executable, str(ROOT / "benchmarks/big_table.py"), "count-fits", *where]
    release += ["--no-tag", "--out", str(work / "releases")]
    seconds, code, text, lines = timed(release, {**env, "PYTHONUNBUFFERED": "1"}, work, work / "release.log")
    if code != 0:
        raise SystemExit(f"big_table: the release failed ({code}):\n{text[-3000:]}")
    fits = json.loads(re.findall(r"^FITS (.*)$", text, re.M)[-1])
    report = [sys.executable, str(ROOT / "search/report.py"), *where, "--out", str(work / "reports")]
    report_s, code, rtext, _ = timed(report, env, work, work / "report.log")
    if code != 0:
        raise SystemExit(f"big_table: the report failed ({code}):\n{rtext[-3000:]}")
    return {"release_s": seconds, "fits": len(fits), "fit_s": fits, "report_s": report_s,
            "release_steps": release_steps(lines)}  # fmt: skip


def run(args) -> dict:
    """The whole benchmark: table, cluster, search, release, report; the figures."""
    import shlex

    args.search_args, args.cluster_args = shlex.split(args.search), shlex.split(args.cluster)
    path = table_file(args)
    copy = reference_bytes(path)
    work = Path(tempfile.mkdtemp(prefix="big-table-run-"))
    state_dir = work / "cluster"
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "MLFLOW_TRACKING_URI")}
    try:
        env.update(start_cluster(state_dir, args))
        uri = env["MLFLOW_TRACKING_URI"]
        memory = Memory(state_dir)
        base = memory.baseline()
        found = search(args, path, env, work, memory)
        result = {"copy_bytes": copy, "file_bytes": path.stat().st_size, "format": args.format, "rows": args.rows}
        result |= {k: found[k] for k in ("wall_s", "search_id", "exit")} | trial_times(uri, found)
        for key in ("pss", "system", "rss", "uss"):
            grown, top = memory.peak(base, key)
            result[f"{key}_growth_bytes"] = grown
            if key == "pss":  # what each role added at the peak
                result["pss_roles_at_peak"] = {r: v - base["roles"].get(r, 0) for r, v in top["roles"].items()}
        result["pss_baseline_bytes"] = base["pss"]
        if not args.no_release and result["completed"]:
            result |= release_and_report(uri, found, env, work)
    finally:
        stop_cluster(state_dir)
    if args.raw:
        Path(args.raw).write_text(json.dumps({**result, "samples": memory.samples}, indent=1))
    return result


def summary(result: dict) -> str:
    """The figures in a few lines."""
    copy = result["copy_bytes"]
    fmt = "Parquet" if result["format"] == "parquet" else "CSV"
    lines = [
        f"table: {result['rows']:,} rows, {fmt} {result['file_bytes'] / 2**20:.0f} MiB on disk, "
        f"one copy {copy / 2**20:.0f} MiB in memory",
        f"search: {result['wall_s']:.0f} s wall; parent run at {result['parent_run_s']:.1f} s (imports, read, "
        f"digest, split); first trial at {result['before_loop_s']:.1f} s; Tune's loop {result['loop_s']:.1f} s; "
        f"after it {result['after_loop_s']:.1f} s",
        f"trials: {result['completed']} at full fidelity; {result['outcomes']}; "
        f"best val_accuracy {result['best']:.4f}; search exit code {result['exit']}",
        f"memory growth at its peak: processes' PSS {result['pss_growth_bytes'] / GIB:.2f} GiB = "
        f"{result['pss_growth_bytes'] / copy:.1f} copies; machine {result['system_growth_bytes'] / GIB:.2f} GiB = "
        f"{result['system_growth_bytes'] / copy:.1f} copies (RSS sum {result['rss_growth_bytes'] / copy:.1f}, "
        f"USS sum {result['uss_growth_bytes'] / copy:.1f})",
        "  what each added at the peak (PSS), in copies: "
        + ", ".join(f"{k} {v / copy:.1f}" for k, v in sorted(result["pss_roles_at_peak"].items())),
    ]
    if "release_s" in result:
        fits = ", ".join(f"{s:.1f}" for s in result["fit_s"])
        lines.append(
            f"release: {result['release_s']:.1f} s, {result['fits']} fit(s) of the chosen model ({fits} s); "
            f"report: {result['report_s']:.1f} s"
        )
        lines.append("  release steps, s: " + ", ".join(f"{k} {v:.1f}" for k, v in result["release_steps"].items()))
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "count-fits":
        count_fits(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", default="run", choices=("run", "stages", "generate"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--numeric", type=int, default=40, help="numeric columns")
    parser.add_argument("--plain", action="store_true", help="numbers only, none missing: no text columns")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--data-dir", help="where the table is generated once and kept (default: a temp folder)")
    parser.add_argument("--time-budget", default="120s")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--search", default="--models logistic_regression",
                        help="more flags of search/run.py (default: %(default)s)")  # fmt: skip
    parser.add_argument("--cluster", default="", help="more flags of cluster/local.py up")
    parser.add_argument("--no-release", action="store_true", help="the search alone")
    parser.add_argument("--raw", help="save the figures and every memory sample as JSON here")
    parser.add_argument("--model", default="logistic_regression", help="stages: the trial's model")
    parser.add_argument("--cv-folds", type=int, default=5, help="stages: the trial's folds")
    args = parser.parse_args()
    if args.command == "generate":
        print(table_file(args))
    elif args.command == "stages":
        stages(args)
    else:
        print(summary(run(args)))


if __name__ == "__main__":
    main()
