"""Datasets: bundled and CSV loading, the digest, the seeded stratified split, and refusals."""

import pandas as pd
import pytest

from search.common.errors import UsageError
from trainables.data import BUNDLED, load_dataset, recorded_source, split_dataset


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_datasets_load_with_named_columns(name):
    data = load_dataset(name)
    assert len(data.X) == len(data.y) > 100 and data.X.shape[1] >= 4
    assert data.digest.startswith("sha256:") and len(data.classes) >= 2


def test_iris_keeps_its_column_and_class_names():
    data = load_dataset("iris")
    assert list(data.X.columns)[0] == "sepal length (cm)"
    assert data.classes == ["setosa", "versicolor", "virginica"]


def test_split_is_seeded_stratified_and_disjoint():
    data = load_dataset("iris")
    a, b, c = split_dataset(data, 0.2, 1), split_dataset(data, 0.2, 1), split_dataset(data, 0.2, 2)
    assert a.X_test.index.equals(b.X_test.index) and not a.X_test.index.equals(c.X_test.index)
    assert set(a.X_dev.index).isdisjoint(a.X_test.index) and len(a.X_test) == 30
    assert a.y_test.value_counts().tolist() == [10, 10, 10]


def test_digest_changes_with_a_single_value():
    data = load_dataset("iris")
    X = data.X.copy()
    X.iloc[0, 0] += 0.1
    assert load_dataset("iris").digest == data.digest
    from trainables.data import digest_of

    assert digest_of(X, data.y) != data.digest


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_csv_with_text_labels(tmp_path):
    rows = "\n".join(f"{i},{i % 7},{'cat' if i % 2 else 'dog'}" for i in range(40))
    data = load_dataset(write(tmp_path, "a,b,kind\n" + rows), target="kind")
    assert data.name == "data" and data.classes == ["cat", "dog"] and list(data.X.columns) == ["a", "b"]


@pytest.mark.parametrize(
    "text, target, message",
    [
        (None, "y", "does not exist"),
        ("", "y", "is empty"),
        ("a,b,y\n1,2,x\n3,4,x\n", "y", "single class"),
        ("a,b,y\n1,2,x\n3,4,z\n", "label", "target column 'label' is not in"),
        ("a,b,y\n", "y", "header but no rows"),
        ("a,b,y\n1,2,x\n3,4,x\n,,z\n", None, "--target"),
        ("a,b,y\n1,2,x\n3,4,z\n", None, "--target"),
    ],
)
def test_bad_csvs_are_refused_with_a_clear_message(tmp_path, text, target, message):
    path = str(tmp_path / "missing.csv") if text is None else write(tmp_path, text)
    with pytest.raises(UsageError, match=message):
        load_dataset(path, target)


def test_unknown_dataset_name_is_refused():
    with pytest.raises(UsageError, match="unknown dataset 'mnist'"):
        load_dataset("mnist")


def test_class_with_one_row_cannot_be_split():
    X = pd.DataFrame({"a": range(11)}, dtype="float64")
    from trainables.data import Dataset

    data = Dataset("tiny", X, pd.Series(["x"] * 10 + ["y"]), "sha256:0")
    with pytest.raises(UsageError, match="only 1 row"):
        split_dataset(data, 0.2, 0)


def test_a_file_read_as_csv_is_the_recorded_source_whatever_its_suffix(tmp_path):
    path = tmp_path / "measurements.txt"
    path.write_text("a,b,label\n1,2,x\n3,4,y\n5,6,x\n7,8,y\n")
    assert load_dataset(str(path), "label").name == "measurements"  # read as a CSV ...
    assert recorded_source(str(path)) == str(path)  # ... so MLflow records where it came from
    assert recorded_source(str(tmp_path / "train.csv")) == str(tmp_path / "train.csv")
    assert recorded_source("iris") is None  # bundled: MLflow records the code that built it
