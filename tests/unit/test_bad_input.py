"""Bad input to the three commands, in-process: exit code 2 and one line on stderr naming the problem."""

from __future__ import annotations

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
