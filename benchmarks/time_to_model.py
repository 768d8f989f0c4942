"""Time to a good model: the held-out score each contender reaches in the same wall-clock budget, table by table.

    pip install -r benchmarks/requirements.txt
    python benchmarks/time_to_model.py                                   # six labelled tables, 60 s and 300 s
    python benchmarks/time_to_model.py --budgets 60 --tables penguins,gbsg2 --out /tmp/ttm.md
    python benchmarks/time_to_model.py --task regression --budgets 60
    python benchmarks/time_to_model.py --tables generated_1000000 --budgets 120   # the generated big table

Per table (copied from its package as a CSV, as in benchmarks/real_tables.py) and budget B, on the project's split
(`split_dataset(data, 0.2, seed)`):
- project: `search/run.py --dataset FILE --target T --time-budget B` (trials until the budget ends it; the clock
  starts with the command, Ray's start included), then `search/release.py`: the model card's held-out scores;
- plain: the same without cheap-first and row fidelity: `--no-defaults-first --scheduler fifo --cv-folds 5` (no
  scikit-learn defaults among the first points, every trial on every row of 5 folds);
- flaml: `flaml.AutoML(time_budget=B)` on the same development part, scored on the same test part.
`generated_<rows>` is benchmarks/big_table.py's table of that many rows (40 numbers, three text columns, missing
values; seeded). Labels are scored by accuracy and balanced accuracy (the project ranks by balanced accuracy where
classes are rare, FLAML by log loss or ROC AUC), numbers by R² and RMSE; the median over the tables, and each
table's gap to FLAML.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.big_table import TARGET, generate
from benchmarks.real_tables import (
    ALL_TABLES,
    REGRESSION_TABLES,
    TABLES,
    copy_table,
    error_line,
    median,
    native_frames,
    run,
    scores_of,
)
from trainables.data import load_dataset, split_dataset

ARMS = ("project", "plain", "flaml")
FLAGS = {"project": [], "plain": ["--no-defaults-first", "--scheduler", "fifo", "--cv-folds", "5"]}
GENERATED = "generated_"  # a table name: benchmarks/big_table.py's table of that many rows


@dataclass
class Result:
    """One table at one budget: each arm's held-out scores ((accuracy, balanced accuracy), or (R², RMSE)), trials
    run, wall seconds."""

    table: str
    budget: int
    score: dict[str, tuple[float, float]] = field(default_factory=dict)
    trials: dict[str, int] = field(default_factory=dict)
    wall: dict[str, float] = field(default_factory=dict)
    failure: str = ""


def search_and_release(arm: str, csv: Path, target: str, work: Path, budget: int, seed: int, result: Result) -> None:
    """The arm's search with `--time-budget`, then the release; its score from the model card."""
    import json

    where = ["--tracking-uri", f"sqlite:///{work}/mlflow.db"]
    argv = ["search/run.py", "--dataset", str(csv), "--target", target, *where, "--storage-path", str(work / "ray")]
    argv += ["--time-budget", f"{budget}s", "--num-samples", "100000", "--seed", str(seed), "--warm-start", "off"]
    start = time.perf_counter()
    done = run([*argv, *FLAGS[arm]], work / "search.log")
    result.wall[arm] = time.perf_counter() - start
    found = re.search(r"^search_id: (\S+)", done.stdout, re.MULTILINE)
    counts = re.search(r"best trials of search \S+ \((\d+) completed", done.stdout)
    if done.returncode or not found:
        result.failure += f" {arm} search: {error_line(done)}"
        return
    result.trials[arm] = int(counts.group(1)) if counts else 0
    release = ["search/release.py", "--search-id", found.group(1), *where, "--no-tag", "--out", str(work / "rel")]
    done = run(release, work / "release.log")
    cards = sorted((work / "rel").glob("*/v*/model_card.json"))
    if done.returncode or not cards:
        result.failure += f" {arm} release: {error_line(done)}"
        return
    test = json.loads(cards[-1].read_text())["test_metrics"]
    keys = ("test_r2", "test_rmse") if "test_r2" in test else ("test_accuracy", "test_balanced_accuracy")
    result.score[arm] = (float(test[keys[0]]), float(test[keys[1]]))


@contextmanager
def stderr_to(path: Path) -> Iterator[None]:
    """This process's standard error (file descriptor 2, which the processes it starts inherit) into `path`."""
    saved = os.dup(2)
    with open(path, "ab") as log:
        sys.stderr.flush()
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)


def flaml(csv: Path, target: str, budget: int, seed: int, result: Result) -> None:
    """FLAML's AutoML with the same budget on the project's split."""
    from flaml import AutoML

    data = load_dataset(str(csv), target)
    split = split_dataset(data, 0.2, seed)
    X_dev, X_test = native_frames(split.X_dev, split.X_test)
    automl, start = AutoML(), time.perf_counter()
    # Its learners' convergence and joblib warnings, thousands of lines in 300 s, go to flaml.log: the joblib workers
    # it starts write them to the standard error they inherit, whatever this process's warning filters say.
    with warnings.catch_warnings(), stderr_to(csv.parent / "flaml.log"):
        warnings.simplefilter("ignore")
        automl.fit(X_dev, split.y_dev, task=data.task, time_budget=budget, seed=seed, verbose=0)
    result.wall["flaml"] = time.perf_counter() - start
    first, second = scores_of(split.y_test, automl.predict(X_test), data.task)  # (RMSE, R²) for a number
    result.score["flaml"] = (second, first) if data.task == "regression" else (first, second)


def markdown(results: list[Result], command: str, metrics: tuple[str, str]) -> str:
    """Per budget and score: a row per table (each arm's score, trials, wall), the medians, the gap to FLAML."""
    lines = [f"`{command}`", ""]
    for budget, i in ((b, i) for b in sorted({r.budget for r in results}) for i in (0, 1)):
        rows = [_one(r, i) for r in results if r.budget == budget]
        lines += [f"Budget {budget} s, held-out {metrics[i]}:", ""]
        lines += ["| table | project | plain | FLAML | project trials | project s | FLAML s |"]
        lines += ["|---|---|---|---|---|---|---|"]
        for r in rows:
            cells = [f"{r.score[a]:.4f}" if a in r.score else "-" for a in ARMS]
            walls = [f"{r.wall[a]:.0f}" if a in r.wall else "-" for a in ("project", "flaml")]
            lines.append(f"| {r.table} | {' | '.join(cells)} | {r.trials.get('project', '-')} | {' | '.join(walls)} |")
        meds = [median([r.score[a] for r in rows if a in r.score]) for a in ARMS]  # each over the tables it ran on
        shown = " | ".join(f"{m:.4f}" if m is not None else "-" for m in meds)
        lines.append(f"| **median** | {shown} | | | |")
        sign = -1 if metrics[i] == "RMSE" else 1  # positive: the project is better
        both = [r for r in rows if "project" in r.score and "flaml" in r.score]
        gaps = {r.table: sign * (r.score["project"] - r.score["flaml"]) for r in both}
        if gaps:
            worst = min(gaps, key=gaps.get)
            middle = median(list(gaps.values()))
            lines += ["", f"project − FLAML: median {middle:+.4f}, worst {gaps[worst]:+.4f} ({worst})"]
        lines += [f"{r.table}: {r.failure.strip()}" for r in rows if r.failure] + [""]
    return "\n".join(lines) + "\n"


def _one(result: Result, i: int) -> Result:
    """The result with the `i`th score of each arm alone."""
    return Result(result.table, result.budget, {a: s[i] for a, s in result.score.items()}, result.trials,
                  result.wall, result.failure)  # fmt: skip


def table_file(name: str, work: Path, tmp: Path) -> Path:
    """The table as a CSV: copied from its package into `work`, or generated once into `tmp`."""
    if name in ALL_TABLES:
        return copy_table(name, work)
    path = tmp / f"{name}.csv"
    return path if path.exists() else generate(path, int(name.removeprefix(GENERATED)), 40, 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("classification", "regression"), default="classification")
    parser.add_argument("--tables", help=f"comma-separated, of {', '.join(ALL_TABLES)} (one task at a time)")
    parser.add_argument("--budgets", default="60,300", help="seconds, comma-separated")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, help="also write the Markdown to this file")
    args = parser.parse_args()
    default = REGRESSION_TABLES if args.task == "regression" else TABLES
    names = [n for n in (args.tables or ",".join(default)).split(",") if n]
    if unknown := sorted(n for n in set(names) - set(ALL_TABLES) if not n.removeprefix(GENERATED).isdigit()):
        parser.error(f"unknown tables {unknown}: choose from {', '.join(ALL_TABLES)}")
    arms = [a for a in args.arms.split(",") if a]
    results = []
    with tempfile.TemporaryDirectory(prefix="time_to_model-") as tmp:
        for budget in (int(b) for b in args.budgets.split(",")):
            for name in names:
                result, target = Result(name, budget), ALL_TABLES[name][2] if name in ALL_TABLES else TARGET
                for arm in arms:
                    work = Path(tmp) / f"{name}-{budget}-{arm}"
                    work.mkdir()
                    csv = table_file(name, work, Path(tmp))
                    print(f"{name}, {budget} s: {arm} ...", flush=True)
                    try:
                        if arm == "flaml":
                            flaml(csv, target, budget, args.seed, result)
                        else:
                            search_and_release(arm, csv, target, work, budget, args.seed, result)
                    except Exception as exc:  # noqa: BLE001 - one arm's failure is a cell of the results
                        result.failure += f" {arm}: {exc.__class__.__name__}: {exc}"
                print(f"{name}, {budget} s: {result.score} {result.failure}".rstrip(), flush=True)
                results.append(result)
    metrics = ("R²", "RMSE") if args.task == "regression" else ("accuracy", "balanced accuracy")
    text = markdown(results, "python benchmarks/time_to_model.py " + " ".join(sys.argv[1:]), metrics)
    print("\n" + text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
