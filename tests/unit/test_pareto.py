"""The Pareto front of trial tables: objectives parsed, non-dominance checked by brute force over random tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from optuna.samplers import TPESampler

from search.common.errors import UsageError
from search.common.pareto import dominates, front, front_table, pareto_mask, parse_objectives, searcher_args

OUTCOMES = ("completed", "completed", "completed", "stopped", "failed")


def random_table(seed: int, n: int = 40) -> pd.DataFrame:
    """Trials with coarse (often tied) scores and costs; some stopped, some failed without metrics."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        outcome = OUTCOMES[rng.integers(len(OUTCOMES))]
        row = {"run_name": f"{i:04d}-svm-basic", "trial_index": i, "model": "svm", "outcome": outcome}
        if outcome != "failed":
            row |= {"val_accuracy": rng.integers(0, 8) / 8, "predict_ms": float(rng.integers(1, 6)),
                    "model_bytes": float(rng.integers(1, 4) * 1000), "folds_done": 5.0, "cv_folds": "5"}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def brute_dominated(a: dict, b: dict, names: list[str], modes: list[str]) -> bool:
    """b dominates a, written out plainly."""
    pairs = list(zip(names, modes, strict=True))
    better_or_equal = all((b[n] >= a[n]) if m == "max" else (b[n] <= a[n]) for n, m in pairs)
    strictly = any((b[n] > a[n]) if m == "max" else (b[n] < a[n]) for n, m in pairs)
    return better_or_equal and strictly


@pytest.mark.parametrize("spec", ["val_accuracy,predict_ms", "val_accuracy,predict_ms,model_bytes"])
@pytest.mark.parametrize("seed", range(12))
def test_front_is_exactly_the_non_dominated_completed_trials(seed, spec):
    objectives = parse_objectives(spec)
    names, modes = [o.name for o in objectives], [o.mode for o in objectives]
    table = random_table(seed)
    mask = pareto_mask(table, objectives)
    rows = table.to_dict("records")
    completed = [r for r in rows if r["outcome"] == "completed"]
    assert any(mask)
    for row, on in zip(rows, mask, strict=True):
        if row["outcome"] != "completed":
            assert not on, f"{row['outcome']} trial on the front"
            continue
        dominated = any(brute_dominated(row, other, names, modes) for other in completed)
        assert on == (not dominated)
        assert on == (not any(dominates(other, row, objectives) for other in completed))


def test_stopped_trial_that_would_dominate_everything_is_not_on_the_front():
    objectives = parse_objectives("val_accuracy,predict_ms")
    rows = [
        {"run_name": "a", "outcome": "completed", "val_accuracy": 0.9, "predict_ms": 2.0},
        {"run_name": "b", "outcome": "stopped", "val_accuracy": 1.0, "predict_ms": 0.1},
        {"run_name": "c", "outcome": "completed", "val_accuracy": 0.8, "predict_ms": 1.0},
        {"run_name": "d", "outcome": "completed", "val_accuracy": 0.8, "predict_ms": None},
    ]
    assert pareto_mask(rows, objectives) == [True, False, True, False]


def test_duplicates_of_a_front_point_are_on_the_front_and_order_is_best_first():
    objectives = parse_objectives("val_accuracy,model_bytes")
    rows = [
        {"run_name": "x", "trial_index": 3, "outcome": "completed", "val_accuracy": 0.9, "model_bytes": 10.0},
        {"run_name": "y", "trial_index": 1, "outcome": "completed", "val_accuracy": 0.9, "model_bytes": 10.0},
        {"run_name": "z", "trial_index": 2, "outcome": "completed", "val_accuracy": 0.95, "model_bytes": 50.0},
        {"run_name": "w", "trial_index": 0, "outcome": "completed", "val_accuracy": 0.9, "model_bytes": 11.0},
    ]
    assert [r["run_name"] for r in front(rows, objectives)] == ["z", "y", "x"]


def test_rows_without_outcome_count_when_they_ran_every_fold():
    objectives = parse_objectives("val_f1,fit_time_s")
    rows = [
        {"val_accuracy": 0.8, "val_f1": 0.8, "fit_time_s": 0.1, "folds_done": 5, "cv_folds": "5"},
        {"val_accuracy": 0.9, "val_f1": 0.9, "fit_time_s": 0.01, "folds_done": 2, "cv_folds": "5"},
    ]
    assert pareto_mask(rows, objectives) == [True, False]


@pytest.mark.parametrize(
    ("text", "needle"),
    [("val_accuracy,latency", "'latency'"), ("val_accuracy", "two or more"), ("predict_ms,predict_ms", "twice")],
)
def test_bad_objectives_are_one_line_usage_errors(text, needle):
    with pytest.raises(UsageError) as err:
        parse_objectives(text)
    message = str(err.value)
    assert needle in message and "\n" not in message
    if "latency" in text:
        assert all(name in message for name in ("predict_ms", "model_bytes", "fit_time_s", "val_"))


def test_modes_and_searcher_arguments():
    objectives = parse_objectives("train_f1, model_bytes ,val_accuracy")
    args = searcher_args(objectives, seed=7)
    assert args["metric"] == ["train_f1", "model_bytes", "val_accuracy"]
    assert args["mode"] == ["max", "min", "max"]
    assert isinstance(args["sampler"], TPESampler)
    assert objectives[1].label() == "model_bytes (bytes, lower is better)"


def test_multi_objective_study_with_these_arguments_agrees_on_the_front():
    """Optuna's own best_trials over a real two-objective study equal our front of the same values."""
    import optuna

    objectives = parse_objectives("val_accuracy,predict_ms")
    args = searcher_args(objectives, seed=3)
    directions = ["maximize" if m == "max" else "minimize" for m in args["mode"]]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=directions, sampler=args["sampler"])
    study.optimize(lambda t: (round(t.suggest_float("a", 0, 1), 1), round(t.suggest_float("b", 0, 1), 1)), 30)
    rows = [{"trial_index": t.number, "outcome": "completed", "val_accuracy": t.values[0], "predict_ms": t.values[1]}
            for t in study.trials]  # fmt: skip
    ours = {r["trial_index"] for r in front(rows, objectives)}
    assert ours == {t.number for t in study.best_trials}


def test_front_table_console_and_markdown():
    objectives = parse_objectives("val_accuracy,model_bytes")
    rows = [{"run_name": "0001-knn-basic", "model": "knn", "feature_set": "basic", "val_accuracy": 0.96,
             "model_bytes": 123456.0}]  # fmt: skip
    text = front_table(rows, objectives)
    assert "0001-knn-basic" in text and "123,456" in text and "lower is better" in text
    md = front_table(rows, objectives, markdown=True).splitlines()
    assert md[0].startswith("| trial |") and md[1].endswith("---:|") and "0.96" in md[2]
    assert len(md) == 3
