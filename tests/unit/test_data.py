"""Datasets: bundled and CSV loading, the digest, the seeded stratified split, and refusals."""

import pandas as pd
import pytest

from search.common.errors import UsageError
from trainables.data import BUNDLED, load_dataset, recorded_source, split_dataset


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_datasets_load_with_named_columns(name):
    data = load_dataset(name)
    assert len(data.X) == len(data.y) > 100 and data.X.shape[1] >= 4
    assert data.digest.startswith("sha256:")
    assert len(data.classes) >= 2 if data.task == "classification" else data.classes == [] and data.y.dtype == float


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


def test_a_table_left_with_no_usable_column_is_refused(tmp_path):
    text = "id,country,y\n" + "\n".join(f"{i},NZ,{'ab'[i % 2]}" for i in range(40))
    with pytest.raises(UsageError, match="no usable feature column: each is an ID, constant or dropped"):
        load_dataset(write(tmp_path, text), "y")
    rows = "\n".join(f"{i % 5},{'ab'[i % 2]}" for i in range(40))
    with pytest.raises(UsageError, match="no usable feature column"):
        load_dataset(write(tmp_path, "a,y\n" + rows, "drops.csv"), "y", drop=["a"])


@pytest.mark.parametrize("flag", ["categorical", "drop"])
def test_an_override_naming_no_column_is_refused(tmp_path, flag):
    path = write(tmp_path, "a,b,y\n1,2,x\n3,4,z\n5,6,x\n")
    with pytest.raises(UsageError, match=rf"--{flag} names \['colour'\], not columns of the table"):
        load_dataset(path, "y", **{flag: ["colour"]})


def test_an_unreadable_file_is_refused_in_one_line(tmp_path):
    garbage = tmp_path / "table.parquet"
    garbage.write_bytes(b"\x00\x01 not parquet at all")
    with pytest.raises(UsageError, match="is not readable as Parquet"):
        load_dataset(str(garbage), "y")
    latin = tmp_path / "latin.csv"
    latin.write_bytes("name,y\ncaf\xe9,a\nth\xe9,b\n".encode("latin-1"))
    with pytest.raises(UsageError, match="is not UTF-8 text: save it as UTF-8"):
        load_dataset(str(latin), "y")


def test_unlabelled_rows_and_mixed_columns_are_said_not_refused(tmp_path):
    rows = [f"{i},{'about 6' if i == 3 else i * 2},{'ab'[i % 2] if i % 10 else ''}" for i in range(40)]
    data = load_dataset(write(tmp_path, "a,b,y\n" + "\n".join(rows)), "y")
    assert len(data.y) == 36 and "4 of 40 rows of data.csv have no 'y': left out" in data.notes
    assert "column 'b' mixes numbers and text (1 text values): read as text" in data.notes


def test_a_semicolon_csv_and_a_parquet_file_read_as_the_same_table(tmp_path):
    frame = pd.DataFrame({"colour": ["red", "blue", None] * 10, "size": [1.5, None, 3.0] * 10, "y": list("ab") * 15})
    (tmp_path / "t.csv").write_text(frame.to_csv(index=False, sep=";"))
    frame.to_parquet(tmp_path / "t.parquet")
    from_csv, from_parquet = load_dataset(str(tmp_path / "t.csv"), "y"), load_dataset(str(tmp_path / "t.parquet"), "y")
    assert list(from_csv.X.columns) == list(from_parquet.X.columns) == ["colour", "size"]
    assert from_csv.roles == from_parquet.roles and from_csv.digest == from_parquet.digest


def test_a_table_inside_the_project_is_recorded_relative_and_found_from_anywhere(tmp_path, monkeypatch):
    """A release in another clone, or a Ray job shipped with --working-dir, finds the table beside the code."""
    import shutil
    import uuid

    from trainables.data import PROJECT_ROOT, recorded_path

    folder = PROJECT_ROOT / f".test-tables-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    try:
        (folder / "t.csv").write_text("a,y\n" + "\n".join(f"{i},{'ab'[i % 2]}" for i in range(20)))
        monkeypatch.chdir(PROJECT_ROOT)
        recorded = recorded_path(str(folder / "t.csv"))
        assert recorded == f"{folder.name}/t.csv"
        monkeypatch.chdir(tmp_path)  # elsewhere: the relative path is read from the project's folder
        assert load_dataset(recorded, "y").digest == load_dataset(str(folder / "t.csv"), "y").digest
        assert recorded_path(str(tmp_path / "u.csv")) == str(tmp_path / "u.csv")  # outside: absolute
    finally:
        shutil.rmtree(folder)
