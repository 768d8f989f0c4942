"""Ctrl-C at every moment of a search's start, as a new user presses it: what each interrupt leaves behind.

    python benchmarks/interrupt_start.py --delays 0.5,1,2,3,4,5,6,8,10,12 --tries 3

Each try runs `python search/run.py --num-samples 6` from a folder of its own laid out as a clone is (`.venv` and
`search/` linked in, so the commands the search prints are run exactly as printed), with a tracking URI and a Tune
folder of its own, as the leader of its own process group, and sends SIGINT to the whole group after the delay, as
a terminal's Ctrl-C does. It records the exit code, the last line of stderr and of stdout, the step the interrupt
landed in (the last line printed before it), a traceback or a fatal signal, the Ray processes left running, the
parent run left behind and its status, whether Tune's state exists; then runs the `--resume` command the search
printed, as printed, and a plain `search/report.py` on the same store. One row a try, as JSON lines, and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cluster.processes import processes_mentioning, stop_processes  # noqa: E402

VENV = Path(sys.executable).parents[1]
# The moments of a start an interrupt can be keyed to (`ray+0.5`: half a second after Ray said it started): a line
# the driver printed, or a process of its Ray seen running.
MARKERS = {
    "gcs": "gcs_server",
    "raylet": "raylet",
    "dashboard": "dashboard/dashboard.py",
    "ray": re.compile(r"Started a local Ray instance"),
    "search": re.compile(r"^search \w+:", re.M),
}
SLOW_S = 30.0  # an interrupt that takes longer to end the command is a problem in itself
RESUME = re.compile(r"(\S*python) search/run\.py --resume (\w+)(.*)$")


def clone(home: Path) -> Path:
    """A working folder laid out as a user's clone: the venv and the code linked in."""
    cwd = home / "clone"
    cwd.mkdir()
    (cwd / ".venv").symlink_to(VENV)
    for part in ("search", "trainables", "cluster"):
        (cwd / part).symlink_to(ROOT / part)
    return cwd


def env_of(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_", "MLFLOW_", "TUNE_"))}
    return {**env, "RAY_TMPDIR": str(home / "ray"), "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONUNBUFFERED": "1"}


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def parents(db: Path) -> list[tuple[str, str]]:
    """(status, lifecycle stage) of every search parent run in the store."""
    if not db.exists():
        return []
    with sqlite3.connect(db) as con:
        try:
            rows = con.execute(
                "select r.status, r.lifecycle_stage from runs r join tags t on t.run_uuid = r.run_uuid "
                "where t.key = 'run_type' and t.value = 'search'"
            ).fetchall()
        except sqlite3.OperationalError:  # the schema was not made yet
            return []
    return rows


def tune_state(storage: Path) -> str:
    folders = list(storage.glob("search-*"))
    if not folders:
        return "none"
    states = [f for f in folders if list(f.glob("experiment_state-*.json"))]
    return "saved" if states else "folder only"


def reached(marker: str | re.Pattern, home: Path) -> bool:
    if isinstance(marker, re.Pattern):
        return bool(marker.search((home / "out").read_text() + (home / "err").read_text()))
    for pid in processes_mentioning(str(home)):
        try:
            if marker in " ".join(psutil.Process(pid).cmdline()[:2]):
                return True
        except psutil.Error:
            pass
    return False


def leftovers(home: Path) -> list[int]:
    return processes_mentioning(str(home))


def as_a_terminal() -> None:
    """In the child: SIGINT as a terminal's foreground job has it, whatever this process inherited (a background
    job of a shell without job control ignores it, and Python then installs no KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def run(cmd: list[str], cwd: Path, env: dict, timeout: float) -> tuple[int | str, str, str]:
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        stop_processes([proc.pid], timeout=5)
        out, err = proc.communicate()
        return "hang", out, err


def one_try(delay: str, trials: int, hang_s: float) -> dict:
    home = Path(tempfile.mkdtemp(prefix="ic-", dir="/tmp"))
    cwd, env = clone(home), env_of(home)
    uri, storage = f"sqlite:///{home}/mlflow.db", home / "rr"
    python = str(cwd / ".venv" / "bin" / "python")
    argv = [
        python,
        "search/run.py",
        "--num-samples",
        str(trials),
        "--tracking-uri",
        uri,
        "--storage-path",
        str(storage),
    ]
    out_f, err_f = open(home / "out", "w+"), open(home / "err", "w+")  # noqa: SIM115
    started = time.monotonic()
    driver = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out_f, stderr=err_f, start_new_session=True,
                              preexec_fn=as_a_terminal)  # fmt: skip
    row: dict = {"delay": delay, "home": str(home)}
    marker, _, seconds = delay.rpartition("+")
    pattern = MARKERS[marker] if marker else None
    seen = None if pattern else started
    while driver.poll() is None and (seen is None or time.monotonic() - seen < float(seconds)):
        if seen is None and reached(pattern, home):
            seen = time.monotonic()
            row["marker_s"] = round(seen - started, 1)
        time.sleep(0.02)
    if driver.poll() is None:
        row["before"] = last_line(Path(home / "out").read_text() + "\n" + Path(home / "err").read_text())
        os.killpg(driver.pid, signal.SIGINT)
        signalled = time.monotonic()
        try:
            driver.wait(timeout=hang_s)
            row["exit"] = driver.returncode
        except subprocess.TimeoutExpired:
            row["exit"] = "hang"
            stop_processes([driver.pid], timeout=5)
        row["stop_s"] = round(time.monotonic() - signalled, 1)
    else:
        row["exit"], row["before"] = driver.returncode, "(finished before the signal)"
    time.sleep(1.0)  # what Ray stops by itself once the driver is gone
    left = leftovers(home)
    row["ray_left"] = len(left)
    if left:
        stop_processes(left, timeout=5)
    out, err = (home / "out").read_text(), (home / "err").read_text()
    row["stderr"], row["stdout"] = last_line(err), last_line(out)
    row["traceback"] = "Traceback" in err or "Traceback" in out
    row["fatal"] = bool(re.search(r"Segmentation fault|SIGSEGV|Fatal Python error|core dumped|SIGABRT", err + out))
    row["search_printed"] = bool(re.search(r"^(search|resuming) \w+:", out, re.M))
    row["parents"] = parents(home / "mlflow.db")
    row["tune"] = tune_state(storage)
    match = RESUME.search(err)
    row["resume"] = None
    if match:  # the command as printed, in the folder the search ran in
        command = shlex.split(match.group(0))
        code, rout, rerr = run(command, cwd, env, 180)
        row["resume"] = code
        row["resume_line"] = last_line(rerr) if code != 0 else last_line(rout)
        if code != 0 and "--tracking-uri" not in command and "no search" in row["resume_line"]:
            # printed without where the search is tracked: would it resume with it?
            code, rout, rerr = run([*command, "--tracking-uri", uri], cwd, env, 180)
            row["resume_with_uri"] = code
        for pid in leftovers(home):
            stop_processes([pid], timeout=5)
    code, rout, rerr = run([python, "search/report.py", "--tracking-uri", uri], cwd, env, 180)
    row["report"] = code
    row["report_line"] = last_line(rerr) if code != 0 else last_line(rout)
    row["parents_after"] = parents(home / "mlflow.db")
    return row


def verdict(row: dict) -> str:
    """`nothing` (nothing left, told to run again), `resumable` (and the resume completed), `finished` (the search
    ended before the signal), or what went wrong."""
    problems = []
    if row["exit"] not in (0, 130):
        problems.append(f"exit {row['exit']}")
    if row["traceback"] or row["fatal"]:
        problems.append("traceback" if row["traceback"] else "fatal signal")
    if isinstance(row.get("stop_s"), float) and row["stop_s"] > SLOW_S:
        problems.append(f"exit after {SLOW_S:.0f} s")
    if row["ray_left"]:
        problems.append(f"{row['ray_left']} Ray processes left")
    nothing = ("no MLflow database", "no search", "no experiment")  # a refusal that says there is nothing yet
    if row["report"] not in (0, 1) and not any(n in row["report_line"] for n in nothing):
        problems.append(f"report exit {row['report']}")
    live = [p for p in row["parents"] if p[1] == "active"]
    if row["exit"] == 0:
        kind = "finished"
    elif not live and row["tune"] == "none":
        kind = "nothing" if re.search(r"nothing .*; run the .* again", row["stderr"]) else "nothing (unsaid)"
    elif row["resume"] == 0:
        kind = "resumable"
    else:
        parent = "/".join(status for status, _ in live) + " parent" if live else "no parent"
        kind = f"{parent}, Tune state {row['tune']}, not resumed as printed"
    return "; ".join([kind, *problems])


def table(rows: list[dict]) -> str:
    """One row a moment: how its tries ended (exit codes), what they left, and what went wrong."""

    def counted(values) -> str:
        return ", ".join(f"{v} x{n}" if n > 1 else str(v) for v, n in Counter(values).most_common())

    head = ["moment", "tries", "exit", "s to exit (max)", "left behind", "resume as printed", "problems"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for moment in dict.fromkeys(r["delay"] for r in rows):
        tries = [r for r in rows if r["delay"] == moment]
        left = counted(r["verdict"].split(";")[0] for r in tries)
        resumes = counted(r["resume"] for r in tries if r["resume"] is not None) or "-"
        problems = counted(p.strip() for r in tries for p in r["verdict"].split(";")[1:]) or "none"
        stops = sorted(r["stop_s"] for r in tries if "stop_s" in r)
        stop = f"{stops[len(stops) // 2]} ({stops[-1]})" if stops else "-"
        cells = [moment, len(tries), counted(r["exit"] for r in tries), stop, left, resumes, problems]
        lines.append("| " + " | ".join(str(c).replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--delays", default="0.5,1,2,3,4,5,6,7,8,10,12")
    parser.add_argument("--tries", type=int, default=3)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument(
        "--hang-s", type=float, default=60.0, help="an interrupted driver still running after this hangs"
    )
    parser.add_argument("--keep", action="store_true", help="keep every try's folder (else only those that went wrong)")
    parser.add_argument("--out", type=Path, help="JSON lines of every try")
    parser.add_argument("--table", type=Path, nargs="+", help="only the table, of the tries saved in these --out files")
    args = parser.parse_args()
    if args.table:
        rows = [json.loads(line) for path in args.table for line in path.read_text().splitlines() if line.strip()]
        for row in rows:
            row["delay"] = str(row["delay"])
            row["verdict"] = verdict(row)
        print(table(rows))
        return
    rows = []
    for _ in range(args.tries):
        for delay in args.delays.split(","):
            row = one_try(delay, args.trials, args.hang_s)
            row["verdict"] = verdict(row)
            rows.append(row)
            if ";" not in row["verdict"] and "left" not in row["verdict"] and not args.keep:
                shutil.rmtree(row["home"], ignore_errors=True)
            print(json.dumps(row), flush=True)
            if args.out:
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    order = args.delays.split(",")
    rows.sort(key=lambda r: order.index(r["delay"]))
    print(table(rows))


if __name__ == "__main__":
    main()
