"""The project's preparation against skrub's TableVectorizer, side by side on public real tables: the serving cost
(CPU milliseconds to predict 1,000 rows, as every trial measures it) and the held-out accuracy of one logistic
regression Pipeline fitted on the same development part.

    pip install -r benchmarks/requirements.txt
    python benchmarks/preparation_cost.py            # penguins-raw and cars, 3 timings each

docs/usage.md ("Your own table") gives the figures and why the project prepares tables with scikit-learn's own
encoders.
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from importlib import resources
from pathlib import Path

import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainables.data import load_dataset, split_dataset
from trainables.trainable import pipeline_for, time_to_predict

LOGISTIC = {"model": "logistic_regression", "feature_set": "basic", "seed": 0, "cv_folds": 5,
            "logistic_regression": {"C": 1.0, "class_weight": "none"}}  # fmt: skip


def tables(folder: Path) -> dict[str, tuple[Path, str]]:
    """Two public tables with text, gaps, IDs and dates, written as the CSV files a user would have."""
    raw = Path(str(resources.files("palmerpenguins").joinpath("data", "penguins-raw.csv")))
    cars = pd.read_json(str(resources.files("vega_datasets").joinpath("_data", "cars.json")))
    cars.to_csv(folder / "cars.csv", index=False)
    return {"penguins-raw": (raw, "Species"), "cars": (folder / "cars.csv", "Origin")}


def main() -> None:
    """Print one line per table and preparation."""
    import skrub

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="timings per Pipeline")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, target) in tables(Path(tmp)).items():
            split = split_dataset(load_dataset(str(path), target), 0.2, 0)
            ours = pipeline_for(LOGISTIC, split.roles)
            theirs = make_pipeline(skrub.TableVectorizer(), SimpleImputer(), StandardScaler(), LogisticRegression())
            for label, pipeline in (("project", ours), ("skrub TableVectorizer", theirs)):
                pipeline.fit(split.X_dev, split.y_dev)
                timings = sorted(time_to_predict(pipeline, split.X_test) for _ in range(args.repeats))
                accuracy = float((pipeline.predict(split.X_test) == split.y_test).mean())
                print(f"{name:13} {label:22} predict_ms {timings[0]:6.1f}-{timings[-1]:6.1f}  accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
