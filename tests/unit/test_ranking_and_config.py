"""The best-trial rule, the command line's checks, and the tracker's background writer."""

import pytest

from search.common.errors import UsageError
from search.common.trials import Trial, rank_trials
from search.searching.config import parse_args
from search.searching.tracking import BackgroundWriter


def row(i, acc, f1, fit, **extra):
    return {"trial_index": i, "val_accuracy": acc, "val_f1": f1, "fit_time_s": fit, **extra}


def test_ties_break_on_f1_then_fit_time_then_order():
    rows = [row(0, 0.95, 0.94, 0.1), row(1, 0.96, 0.90, 0.5), row(2, 0.96, 0.95, 0.3), row(3, 0.96, 0.95, 0.2)]
    rows.append(row(4, 0.96, 0.95, 0.2))
    assert [r["trial_index"] for r in rank_trials(rows)] == [3, 4, 2, 1, 0]


def test_trials_that_did_not_run_every_fold_are_not_eligible():
    rows = [row(0, 0.99, 0.99, 0.1, folds_done=2, cv_folds=5), row(1, 0.90, 0.90, 0.1, folds_done=5, cv_folds=5)]
    assert [r["trial_index"] for r in rank_trials(rows)] == [1]


def test_ranking_by_f1():
    rows = [row(0, 0.97, 0.90, 0.1), row(1, 0.96, 0.95, 0.1)]
    assert rank_trials(rows, metric="val_f1")[0]["trial_index"] == 1


def test_defaults_and_kebab_case_flags(monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    config = parse_args(["--models", "knn,svm", "--feature-sets", "pca", "--num-samples", "3", "--cv-folds", "4"])
    assert config.models == ["knn", "svm"] and config.feature_sets == ["pca"]
    assert config.tracking_uri == "http://127.0.0.1:5999" and config.address is None and config.dataset == "iris"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--num-samples", "0"], "at least 1 trial"),
        (["--cv-folds", "0"], "or 1 for one holdout split"),
        (["--test-size", "1.5"], "between 0 and 1"),
    ],
)
def test_settings_that_cannot_work_are_refused(argv, message):
    with pytest.raises(UsageError, match=message):
        parse_args(argv)


def test_unknown_model_is_one_line_and_exit_2(capsys):
    from search.run import main

    assert main(["--models", "knn,xgboost"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown model ['xgboost']: choose from logistic_regression" in err
    assert "usage:" not in err


def test_writer_retries_then_writes_everything_in_order():
    done, attempts = [], {"n": 0}

    def flaky():
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("server away")
        done.append("flaky")

    writer = BackgroundWriter(delays=(0.01,) * 4)
    writer.submit(flaky)
    writer.submit(lambda: done.append("second"))
    writer.close()
    assert done == ["flaky", "second"] and attempts["n"] == 3 and writer.failures == []


def test_writer_reports_a_write_that_never_succeeds():
    writer = BackgroundWriter(delays=(0.01,))
    writer.submit(lambda: 1 / 0)
    writer.close()
    assert len(writer.failures) == 1 and "ZeroDivisionError" in writer.failures[0]


def test_outcome_of_a_trial():
    assert Trial.from_result({"cv_folds": 5}, {"folds_done": 5}, failed=False).outcome == "completed"
    assert Trial.from_result({"cv_folds": 5}, {"folds_done": 2}, failed=False).outcome == "stopped"
    assert Trial.from_result({"cv_folds": 5}, {}, failed=True).outcome == "failed"


def test_points_to_evaluate_are_read_and_checked(tmp_path):
    good = tmp_path / "points.json"
    good.write_text('[{"model": "knn", "feature_set": "basic", "n_neighbors": 3, "weights": "distance", "p": 2}]')
    config = parse_args(["--models", "knn", "--points-to-evaluate", str(good)])
    assert config.points_to_evaluate[0]["n_neighbors"] == 3 and config.as_dict()["points_to_evaluate"]
    bad = tmp_path / "bad.json"
    for text, message in [
        ("{oops", "is not JSON"),
        ('{"model": "knn"}', "a JSON list of objects"),
        ('[{"model": "svm", "feature_set": "basic"}]', "configuration 1: model 'svm' is not one of"),
    ]:
        bad.write_text(text)
        with pytest.raises(UsageError, match=message):
            parse_args(["--models", "knn", "--points-to-evaluate", str(bad)])
    with pytest.raises(UsageError, match="No such file"):
        parse_args(["--points-to-evaluate", str(tmp_path / "absent.json")])


def test_writer_keeps_each_trials_writes_in_order_and_overlaps_different_trials():
    import threading

    writer, done = BackgroundWriter(delays=(0.01,)), []
    released = threading.Event()
    # trial a's first write waits for trial d's, on the other lane: one thread alone would time out
    writer.submit(lambda: done.append(("a", 0 if released.wait(5) else -1)), key="a")
    writer.submit(lambda: done.append(("a", 1)), key="a")
    writer.submit(lambda: (done.append(("d", 0)), released.set()), key="d")
    writer.close()
    assert [n for k, n in done if k == "a"] == [0, 1] and ("d", 0) in done and writer.failures == []
