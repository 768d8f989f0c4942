"""Bad input to the three commands, in-process: exit code 2 and one line on stderr naming the problem."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from search import release, report, run
from search.releasing.model_card import render_markdown
from search.releasing.publish import card_for
from search.releasing.retrain import Lineage, Scores
from trainables.data import load_dataset, split_dataset


def refused(capsys, main, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, (code, err)
    return err


@pytest.fixture
def store(tmp_path) -> list[str]:
    return ["--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"]


def test_target_on_a_bundled_dataset_is_refused(capsys, tmp_path, store):
    argv = ["--dataset", "iris", "--target", "label", "--storage-path", str(tmp_path / "runs"), *store]
    assert "--target applies to a table file; iris has its own labels" in refused(capsys, run.main, argv)


def test_a_folder_as_dataset_is_said_to_be_a_folder(capsys, tmp_path, store):
    argv = ["--dataset", str(tmp_path), "--target", "y", "--storage-path", str(tmp_path / "runs"), *store]
    assert f"dataset {tmp_path} is a folder, not a table" in refused(capsys, run.main, argv)


@pytest.mark.bad_input("--task regression of labels, a metric of the other task, a --time-budget that is no duration")
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--dataset", "iris", "--task", "regression"], "--task regression needs a numeric target"),
        (["--dataset", "diabetes", "--metric", "val_accuracy"], "--metric val_accuracy scores classification, and"),
        (["--dataset", "iris", "--metric", "val_rmse"], "--metric val_rmse scores regression, and this search is"),
        (["--time-budget", "ten minutes"], "'ten minutes' is not a duration: give one such as 90s, 10m or 2h"),
    ],
)
def test_the_task_metric_and_budget_are_checked_before_anything_starts(capsys, tmp_path, store, argv, message):
    assert message in refused(capsys, run.main, [*argv, "--storage-path", str(tmp_path / "runs"), *store])
    assert not (tmp_path / "runs").exists() and not (tmp_path / "mlflow.db").exists()  # nothing started


@pytest.mark.parametrize("flag", ["--max-predict-ms", "--max-model-mb"])
def test_a_negative_budget_is_bad_input(capsys, flag, store):
    assert f"release: {flag} is -1.0: give a positive number" in refused(capsys, release.main, [flag, "-1", *store])


def test_an_unwritable_report_folder_is_bad_input(capsys, store):
    err = refused(capsys, report.main, ["--out", "/proc/forbidden", *store])
    assert err.startswith("report: --out /proc/forbidden is not writable")


def test_the_card_shows_integers_as_integers_and_only_the_test_scores():
    metrics = {"test_accuracy": 0.9667, "test_f1": 0.96, "test_f1.a": 1.0, "predict_ms": 0.5, "model_bytes": 16953.0}
    scores = Scores(metrics, {"a": {"f1-score": 1.0}}, [[1]], ["a"])
    lineage = Lineage("iris", None, 0.2, 42, "sha256:0", {"model": "knn"})
    run_ = SimpleNamespace(
        data=SimpleNamespace(tags={}, metrics={"val_accuracy": 0.95}), info=SimpleNamespace(run_id="r")
    )
    chosen = SimpleNamespace(search=run_, best=run_, search_id="s", metric="val_accuracy", rule="r", runner_up=None,
                             n_eligible=1)  # fmt: skip
    version = SimpleNamespace(version="1", creation_timestamp=0)
    split = split_dataset(load_dataset("iris"), 0.2, 42)
    ctx = SimpleNamespace(name="m", version=version, scores=scores, chosen=chosen, lineage=lineage, check=None,
                          run_id="rr", rows=(120, 30), split=split)  # fmt: skip
    promotion = {"alias": "champion", "verdict": "promoted", "reason": "first"}
    card = card_for(ctx, promotion, None)
    text = render_markdown(card)
    assert "| model_bytes | 16953 |" in text and "16953.0" not in text
    assert "target" not in card["lineage"] and "| target |" not in text
    assert {k for k, v in card["test_metrics"].items() if not isinstance(v, dict)} == {"test_accuracy", "test_f1"}
    assert [col["role"] for col in card["columns"]] == ["numeric"] * 4 and "## Columns" in text


@pytest.mark.parametrize(
    "main, argv, message",
    [
        (run.main, ["--num-sample", "5"], "unrecognized arguments: --num-sample 5"),
        (release.main, ["--search", "abc"], "unrecognized arguments: --search abc"),
        (report.main, ["--experiment-name", "x"], "unrecognized arguments: --experiment-name x"),
        (run.main, ["--num-samples", "five"], "argument --num-samples: invalid int value: 'five'"),
        (run.main, ["--test-size", "a fifth"], "argument --test-size: invalid float value: 'a fifth'"),
        (release.main, ["--max-predict-ms", "fast"], "argument --max-predict-ms: invalid float value: 'fast'"),
        (run.main, ["--seed", "-1"], "--seed is -1: give a whole number from 0 to 4294967295"),
        (run.main, ["--seed", str(2**32)], "--seed is 4294967296"),
        (run.main, ["--min-delta", "nan"], "--min-delta is nan: give a gain of 0 or more"),
        (run.main, ["--test-size", "nan"], "--test-size is nan: give a share between 0 and 1"),
        (run.main, ["--experiment", " "], "--experiment is empty"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_a_flag_is_taken_only_as_spelled_and_with_a_value_that_can_work(capsys, tmp_path, store, main, argv, message):
    err = refused(
        capsys, main, [*argv, *store, *(["--storage-path", str(tmp_path / "runs")] if main is run.main else [])]
    )
    assert message in err and "Traceback" not in err
    assert not list(tmp_path.iterdir()), "nothing is written for a refused flag"


@pytest.mark.parametrize("main", [run.main, release.main, report.main], ids=["run", "release", "report"])
@pytest.mark.parametrize(
    "uri, message",
    [
        ("mlruns", "is not a tracking URI MLflow can use: give sqlite:///mlflow.db"),
        ("file:///tmp/mlruns", "is not a tracking URI MLflow can use"),
        ("mlfow://127.0.0.1:5000", "is not a tracking URI MLflow can use"),
        ("sqlite:////proc/forbidden/mlflow.db", "/proc is not writable"),
        ("sqlite:////etc/hostname/mlflow.db", "/etc/hostname is not writable"),
    ],
)
def test_a_tracking_uri_mlflow_cannot_use_is_refused_before_any_server(
    capsys, tmp_path, monkeypatch, main, uri, message
):
    monkeypatch.chdir(tmp_path)
    err = refused(capsys, main, ["--tracking-uri", uri])
    if main is not run.main and "not writable" in message:  # they read a database, which is not there
        message = f"no MLflow database at {uri.removeprefix('sqlite:///')}"
    assert message in err
    assert not list(tmp_path.iterdir())


def test_a_sqlite_uri_naming_a_folder_is_refused(capsys, tmp_path):
    err = refused(capsys, run.main, ["--tracking-uri", f"sqlite:///{tmp_path}"])
    assert f"{tmp_path} is a folder: name a database file, e.g. {tmp_path}/mlflow.db" in err


@pytest.mark.parametrize("command", ["run", "release", "report"])
def test_help_shows_every_default(command, monkeypatch, tmp_path):
    from search.searching import config

    monkeypatch.chdir(tmp_path)
    parser = {"run": config, "release": release, "report": report}[command].build_parser()
    chunks = re.split(r"\n  (?=--)", parser.format_help())
    defaults = {k: v for k, v in vars(parser.parse_args([])).items() if v not in (None, False)}
    assert len(defaults) >= {"run": 10, "release": 5, "report": 0}[command]
    for dest in defaults:
        flag = "--" + dest.replace("_", "-")
        chunk = next(c for c in chunks if c.startswith((flag + " ", f"--no-{flag[2:]} ")))  # a flag that turns off
        assert "default" in chunk, f"{command} --help shows no default for {flag}: {chunk!r}"
