"""The project on real tables: its released model's held-out scores beside HistGradientBoosting and FLAML.

    pip install -r benchmarks/requirements.txt                  # FLAML and lifelines: this benchmark's alone
    python benchmarks/real_tables.py                            # six tables with labels, the default search each
    python benchmarks/real_tables.py --task regression          # six tables with a number to predict
    python benchmarks/real_tables.py --tables penguins,cars --num-samples 10 --out /tmp/real_tables.md
    python benchmarks/real_tables.py --tables gbsg2,barley --seeds 1,2,3,4,5   # each split and search 5 times

Each table is copied from its pip package (found with importlib.resources) into a temporary folder as a CSV, as a
user has it; all three see the project's split (`load_dataset`, `split_dataset(data, 0.2, seed)`):
- project: `search/run.py --dataset FILE --target T` (30 trials, `--warm-start off`, its own MLflow and Tune folders),
  then `search/release.py`; the held-out scores are the model card's. Its wall time is the search command's.
- hgb: `HistGradientBoostingClassifier` (a regression table: `HistGradientBoostingRegressor`) at its defaults, no
  search, fitted on the development part: numbers as they are, dates as year, month and day, other text as pandas
  categories (`categorical_features="from_dtype"`; a column with more than 255 values in the development part is
  left out, as that class requires).
- flaml: `flaml.AutoML(task="classification" or "regression", time_budget=<the search's wall seconds>, seed=seed)` on
  the same frames.
Labels are scored by accuracy and balanced accuracy, numbers by RMSE and R².
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, balanced_accuracy_score, r2_score, root_mean_squared_error

from trainables.data import load_dataset, split_dataset

ROOT = Path(__file__).resolve().parents[1]
MAX_CATEGORIES = 255  # HistGradientBoosting's limit on a native categorical column
DATE_SHARE = 0.9  # share of a text column's values that must parse as dates for it to count as a date column
TABLES = {  # name: (package, resource, target)
    "penguins": ("palmerpenguins", "data/penguins.csv", "species"),
    "penguins_raw": ("palmerpenguins", "data/penguins-raw.csv", "Species"),
    "seattle_weather": ("vega_datasets", "_data/seattle-weather.csv", "weather"),
    "cars": ("vega_datasets", "_data/cars.json", "Origin"),
    "gbsg2": ("lifelines", "datasets/gbsg2.csv", "cens"),
    "dd": ("lifelines", "datasets/dd.csv", "regime"),
}
REGRESSION_TABLES = {  # the same, with a number to predict
    "diabetes": ("sklearn", "diabetes", "target"),
    "penguins_mass": ("palmerpenguins", "data/penguins.csv", "body_mass_g"),
    "cars_mpg": ("vega_datasets", "_data/cars.json", "Miles_per_Gallon"),
    "seattle_temp": ("vega_datasets", "_data/seattle-weather.csv", "temp_max"),
    "barley": ("vega_datasets", "_data/barley.json", "yield"),
    "dd_duration": ("lifelines", "datasets/dd.csv", "duration"),
}
ALL_TABLES = {**TABLES, **REGRESSION_TABLES}
NAMES = {"classification": ("acc", "bal acc"), "regression": ("RMSE", "R²")}


@dataclass
class Row:
    """One table's results: held-out scores by contender, wall seconds, and what went wrong."""

    table: str
    shape: str = ""
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # contender: (accuracy, balanced accuracy)
    task: str = "classification"  # a number to predict: scores are (RMSE, R²)
    wall: dict[str, float] = field(default_factory=dict)
    chosen: str = ""  # the released trial's model family and feature set
    failure: str = ""


def copy_table(name: str, folder: Path) -> Path:
    """The table as a CSV file in `folder`, read from its package's data (JSON written as CSV; scikit-learn's
    bundled set as its frame)."""
    package, resource, _ = ALL_TABLES[name]
    path = folder / f"{name}.csv"
    if package == "sklearn":
        from sklearn import datasets

        getattr(datasets, f"load_{resource}")(as_frame=True).frame.to_csv(path, index=False)
        return path
    source = importlib.resources.files(package).joinpath(resource)
    with importlib.resources.as_file(source) as local:
        if local.suffix == ".json":
            pd.read_json(local).to_csv(path, index=False)
        else:
            shutil.copyfile(local, path)
    return path


def run(argv: list[str], log: Path) -> subprocess.CompletedProcess:
    """A project command from the repository's root with this interpreter, its output kept in `log`."""
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True)
    log.write_text(f"$ {' '.join(argv)}\n{done.stdout}\n--- stderr\n{done.stderr}")
    return done


def error_line(done: subprocess.CompletedProcess) -> str:
    """The last line a failed command printed: its one-line refusal, or its traceback's last line."""
    lines = [line for line in done.stderr.splitlines() if line.strip()] or done.stdout.splitlines() or ["no output"]
    return f"exit {done.returncode}: {lines[-1].strip()}"


def project(csv: Path, target: str, work: Path, args: argparse.Namespace, row: Row) -> None:
    """The default search through the command line, then the release; scores from the model card."""
    where = ["--tracking-uri", f"sqlite:///{work}/mlflow.db"]
    search = ["search/run.py", "--dataset", str(csv), "--target", target, *where, "--storage-path", str(work / "ray")]
    search += ["--num-samples", str(args.num_samples), "--seed", str(args.seed), "--warm-start", "off"]
    start = time.perf_counter()
    done = run(search, work / "search.log")
    row.wall["project"] = time.perf_counter() - start
    found = re.search(r"^search_id: (\S+)", done.stdout, re.MULTILINE)
    if done.returncode or not found:
        row.failure = f"search: {error_line(done)}"
        return
    release = ["search/release.py", "--search-id", found.group(1), *where, "--no-tag", "--out", str(work / "releases")]
    done = run(release, work / "release.log")
    cards = sorted((work / "releases").glob("*/v*/model_card.json"))
    if done.returncode or not cards:
        row.failure = f"release: {error_line(done)}"
        return
    card = json.loads(cards[-1].read_text())
    test, params = card["test_metrics"], card["parameters"]
    keys = ("test_rmse", "test_r2") if "test_rmse" in test else ("test_accuracy", "test_balanced_accuracy")
    row.scores["project"] = (float(test[keys[0]]), float(test[keys[1]]))
    row.chosen = f"{params.get('model', '?')}/{params.get('feature_set', '?')}"


def native_frames(X_dev: pd.DataFrame, X_test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both parts as HistGradientBoosting takes them natively: numbers as they are, dates as year, month and day,
    other text as categories of the development part's values (unseen ones missing); wider text columns left out."""
    dev, test = {}, {}
    for col in X_dev.columns:
        a, b = X_dev[col], X_test[col]
        if pd.api.types.is_numeric_dtype(a) and not pd.api.types.is_bool_dtype(a):
            dev[col], test[col] = a, b
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dates = [pd.to_datetime(part, errors="coerce", format="mixed") for part in (a, b)]
        if a.notna().any() and dates[0].notna().sum() >= DATE_SHARE * a.notna().sum():
            for part, values in zip((dev, test), dates, strict=True):
                part.update(
                    {f"{col}_year": values.dt.year, f"{col}_month": values.dt.month, f"{col}_day": values.dt.day}
                )
            continue
        a, b = a.astype(str).where(a.notna()), b.astype(str).where(b.notna())
        categories = sorted(a.dropna().unique())
        if len(categories) <= MAX_CATEGORIES:
            dtype = pd.CategoricalDtype(categories)
            dev[col], test[col] = a.astype(dtype), b.where(b.isin(categories)).astype(dtype)
    return pd.DataFrame(dev, index=X_dev.index), pd.DataFrame(test, index=X_test.index)


def scores_of(y_true: pd.Series, y_pred, task: str = "classification") -> tuple[float, float]:
    """(accuracy, balanced accuracy) on the test part; (RMSE, R²) for a number."""
    if task == "regression":
        return root_mean_squared_error(y_true, y_pred), r2_score(y_true, y_pred)
    return accuracy_score(y_true, y_pred), balanced_accuracy_score(y_true, y_pred)


def baselines(csv: Path, target: str, args: argparse.Namespace, row: Row) -> None:
    """HistGradientBoosting at its defaults, and FLAML with the search's wall time, on the project's split."""
    data = load_dataset(str(csv), target)
    split = split_dataset(data, 0.2, args.seed)
    row.shape, row.task = f"{len(data.y)} × {data.X.shape[1]}", data.task
    X_dev, X_test = native_frames(split.X_dev, split.X_test)
    model = HistGradientBoostingRegressor if data.task == "regression" else HistGradientBoostingClassifier
    hgb = model(categorical_features="from_dtype", random_state=args.seed)
    row.scores["hgb"] = scores_of(split.y_test, hgb.fit(X_dev, split.y_dev).predict(X_test), data.task)
    if "project" not in row.wall:
        return
    from flaml import AutoML

    automl, start = AutoML(), time.perf_counter()
    budget = max(1, round(row.wall["project"]))
    automl.fit(X_dev, split.y_dev, task=data.task, time_budget=budget, seed=args.seed, verbose=0)
    row.wall["flaml"] = time.perf_counter() - start
    row.scores["flaml"] = scores_of(split.y_test, automl.predict(X_test), data.task)


CONTENDERS = ("project", "hgb", "flaml")


def cells(values: list[float | None], digits: str = ".4f") -> str:
    """Table cells of numbers, `-` where there is none."""
    return " | ".join("-" if v is None else f"{v:{digits}}" for v in values)


def median(values: list[float]) -> float | None:
    """The median, None of nothing."""
    return statistics.median(values) if values else None


def markdown(rows: list[Row], command: str) -> str:
    """The results as a Markdown table, a median row under it, and the project's gap to HistGradientBoosting (for
    RMSE, hgb's less the project's: positive is better either way)."""
    task = rows[0].task if rows else "classification"
    first, second = NAMES[task]
    head = " | ".join(f"{c} {first} | {c} {second}" for c in CONTENDERS)
    lines = [f"`{command}`  ", f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {date.today()}", ""]
    lines += [f"| table | rows × columns | released trial | {head} | search s | FLAML s |", "|---" * 11 + "|"]
    for r in rows:
        scores = [r.scores[c][i] if c in r.scores else None for c in CONTENDERS for i in (0, 1)]
        walls = cells([r.wall.get("project"), r.wall.get("flaml")], ".0f")
        lines.append(f"| {r.table} | {r.shape} | {r.chosen or 'failed'} | {cells(scores)} | {walls} |")
    complete = [r for r in rows if all(c in r.scores for c in CONTENDERS)]  # the medians compare the same tables
    scores = [median([r.scores[c][i] for r in complete]) for c in CONTENDERS for i in (0, 1)]
    walls = cells([median([r.wall[k] for r in complete]) for k in ("project", "flaml")], ".0f")
    label = "median" if len(complete) == len(rows) else f"median of the {len(complete)} tables all three scored"
    lines.append(f"| **{label}** | | | {cells(scores)} | {walls} |\n")
    lower_first = task == "regression"  # RMSE: lower is better
    for i, name in enumerate((first, second) if complete else ()):
        sign = -1 if lower_first and i == 0 else 1
        gaps = {r.table: sign * (r.scores["project"][i] - r.scores["hgb"][i]) for r in complete}
        worst = min(gaps, key=gaps.get)
        what = "hgb − project" if sign < 0 else "project − hgb"
        lines.append(f"{what}, {name}: median {median(list(gaps.values())):+.4f}, worst {gaps[worst]:+.4f} ({worst})  ")
    lines += [f"{r.table}: {r.failure.strip()}  " for r in rows if r.failure]
    return "\n".join(lines) + "\n"


def mean_gaps(rows: list[Row], names: list[str], seeds: list[int]) -> str:
    """Per table, the project's mean gap to hgb over the seeds and its spread; positive when the project is better
    (for RMSE, hgb's less the project's)."""
    first, second = NAMES[rows[0].task] if rows else NAMES["classification"]
    lines = ["", "Gaps to hgb over the seeds (positive: the project is better):", ""]
    lines += [f"| table | seeds | {first} gap, mean (sd) | {second} gap, mean (sd) |", "|---|---|---|---|"]
    for name in names:
        mine = [r for r in rows if r.table.startswith(f"{name} (") and {"project", "hgb"} <= set(r.scores)]
        if not mine:
            continue
        cols = []
        for i in (0, 1):
            sign = -1 if mine[0].task == "regression" and i == 0 else 1  # RMSE: lower is better
            gaps = [sign * (r.scores["project"][i] - r.scores["hgb"][i]) for r in mine]
            spread = statistics.stdev(gaps) if len(gaps) > 1 else 0.0
            cols.append(f"{statistics.mean(gaps):+.4f} ({spread:.4f})")
        lines.append(f"| {name} | {len(mine)} of {len(seeds)} | {' | '.join(cols)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=tuple(NAMES), default="classification", help="which six tables by default")
    parser.add_argument("--tables", help=f"comma-separated, of {', '.join(ALL_TABLES)} (one task at a time)")
    parser.add_argument("--num-samples", type=int, default=30, help="trials of each search")
    parser.add_argument("--seed", type=int, default=42, help="the split, the search, HistGradientBoosting, FLAML")
    parser.add_argument("--seeds", help="several seeds, comma-separated: each table once per seed, and the mean gap")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args()
    default = REGRESSION_TABLES if args.task == "regression" else TABLES
    names = [name for name in (args.tables or ",".join(default)).split(",") if name]
    unknown = sorted(set(names) - set(ALL_TABLES))
    if unknown:
        parser.error(f"unknown tables {unknown}: choose from {', '.join(ALL_TABLES)}")
    seeds = [int(s) for s in args.seeds.split(",")] if args.seeds else [args.seed]
    rows = []
    with tempfile.TemporaryDirectory(prefix="real_tables-") as tmp:
        for name, args.seed in ((n, s) for n in names for s in seeds):
            label = f"{name} (seed {args.seed})" if len(seeds) > 1 else name
            work, row = Path(tmp) / f"{name}-{args.seed}", Row(label)
            work.mkdir()
            csv, target = copy_table(name, work), ALL_TABLES[name][2]
            print(f"{name}: the project's search and release ...", flush=True)
            project(csv, target, work, args, row)
            print(f"{name}: HistGradientBoosting, FLAML ...", flush=True)
            try:
                baselines(csv, target, args, row)
            except Exception as exc:  # noqa: BLE001 - one table's failure is a row of the results, not the end
                row.failure += f" baselines: {exc.__class__.__name__}: {exc}"
            print(f"{name}: {row.scores} {row.failure}".rstrip(), flush=True)
            rows.append(row)
    command = "python benchmarks/real_tables.py " + " ".join(sys.argv[1:])
    text = markdown(rows, command.strip()) + (mean_gaps(rows, names, seeds) if len(seeds) > 1 else "")
    print("\n" + text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
