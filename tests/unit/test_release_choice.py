"""Which rule of the ranking separated the chosen trial from the runner-up, and the CLI's small helpers."""

from __future__ import annotations

import pytest
from mlflow.entities.model_registry import ModelVersion

from search.common import contract
from search.common.errors import UsageError
from search.common.trials import rank_trials
from search.release import build_parser
from search.releasing.choice import deciding_rule
from search.releasing.registry import gate


def row(val_accuracy, val_f1=0.9, fit_time_s=0.01, trial_index=0):
    return {"val_accuracy": val_accuracy, "val_f1": val_f1, "fit_time_s": fit_time_s, "trial_index": trial_index}


def test_each_rule_named():
    assert deciding_rule(row(0.97), row(0.95), "val_accuracy") == "higher val_accuracy (0.97 vs 0.95)"
    assert deciding_rule(row(0.95, 0.95), row(0.95, 0.94), "val_accuracy").startswith(
        "tie on val_accuracy; higher val_f1"
    )
    rule = deciding_rule(row(0.95, fit_time_s=0.01), row(0.95, fit_time_s=0.02), "val_accuracy")
    assert rule == "tie on val_accuracy, val_f1; lower fit_time_s (0.01 vs 0.02)"
    rule = deciding_rule(row(0.95, trial_index=1), row(0.95, trial_index=4), "val_accuracy")
    assert rule == "tie on val_accuracy, val_f1, fit_time_s; earlier trial (1 vs 4)"
    assert deciding_rule(row(0.9), None, "val_accuracy") == "the only eligible trial"


def test_rule_agrees_with_ranking():
    rows = [row(0.95, trial_index=3), row(0.95, trial_index=1), row(0.9, trial_index=0)]
    best, second = rank_trials(rows)[:2]
    assert best["trial_index"] == 1 and "earlier trial (1 vs 3)" in deciding_rule(best, second, "val_accuracy")


def test_val_f1_as_metric_does_not_repeat_itself():
    assert deciding_rule(row(0.9, 0.95), row(0.95, 0.94), "val_f1") == "higher val_f1 (0.95 vs 0.94)"
    rule = deciding_rule(row(0.9, 0.95, 0.01), row(0.9, 0.95, 0.02), "val_f1")
    assert rule == "tie on val_f1; lower fit_time_s (0.01 vs 0.02)"  # val_accuracy is not a rule then


def test_cli_defaults_and_names():
    args = build_parser().parse_args([])
    assert (args.experiment, args.metric, args.alias, args.remote) == (None, "val_accuracy", "champion", "origin")
    assert not (args.force or args.push or args.no_tag or args.allow_dirty or args.verify)
    # one naming rule for every dataset
    assert contract.model_name(contract.experiment_name("iris")) == "iris_classification_best_model"
    assert contract.model_name(contract.experiment_name("wine")) == "wine_classification_best_model"
    assert contract.git_tag_name("wine_classification_best_model", 3) == "wine_classification_best_model-v3"
    assert contract.test_metric_for("val_accuracy") == "test_accuracy" and contract.test_metric_for("val_f1") == "test_f1"
    assert contract.test_metric_for("val_log_loss") == "test_log_loss" and contract.mode_of("test_log_loss") == "min"


def test_a_bad_flag_is_one_usage_error_without_the_usage_block():
    with pytest.raises(UsageError, match=r"unrecognized arguments: --colour \(see --help\)"):
        build_parser().parse_args(["--colour"])


def test_the_gate_refuses_over_budget_before_any_score_and_despite_force():
    new = ModelVersion("m", "2", 0, tags={})
    held = ModelVersion("m", "1", 0, tags={})
    decision = gate(None, new, 1.0, "test_accuracy", held, True, "predict_ms 3 ms > 2 ms")
    assert not decision.move and decision.verdict == contract.OVER_BUDGET
    assert "predict_ms 3 ms > 2 ms" in decision.reason and "v1 keeps it" in decision.reason
    first = gate(None, new, 1.0, "test_accuracy", None, False, "model 2 MB > 1 MB")
    assert not first.move and "no version gets it" in first.reason
    assert gate(None, new, 1.0, "test_accuracy", None, False, None).move


def test_microseconds_of_fit_time_are_a_tie_and_the_earlier_trial_wins():
    slower_but_first = row(0.9667, 0.9666, fit_time_s=0.012014, trial_index=2)
    faster_by_14us = row(0.9667, 0.9666, fit_time_s=0.012, trial_index=5)
    best, second = rank_trials([faster_by_14us, slower_but_first])
    assert best["trial_index"] == 2
    rule = deciding_rule(best, second, "val_accuracy")
    assert (
        rule
        == "tie on val_accuracy, val_f1, fit_time_s (0.01201 vs 0.012 s: within 10% or 1 ms); earlier trial (2 vs 5)"
    )


def test_fit_times_tie_within_ten_percent_or_a_millisecond():
    base = row(0.95, fit_time_s=0.100, trial_index=9)
    assert rank_trials([base, row(0.95, fit_time_s=0.109, trial_index=1)])[0]["trial_index"] == 1  # within 10%
    assert rank_trials([base, row(0.95, fit_time_s=0.111, trial_index=1)])[0]["trial_index"] == 9  # beyond it
    small = row(0.95, fit_time_s=0.0020, trial_index=9)
    assert rank_trials([small, row(0.95, fit_time_s=0.0029, trial_index=1)])[0]["trial_index"] == 1  # within 1 ms
    assert rank_trials([small, row(0.95, fit_time_s=0.0032, trial_index=1)])[0]["trial_index"] == 9
    rule = deciding_rule(base, row(0.95, fit_time_s=0.111, trial_index=1), "val_accuracy")
    assert rule == "tie on val_accuracy, val_f1; lower fit_time_s (0.1 vs 0.111)"


def test_the_ranking_is_the_same_whatever_order_the_trials_come_in():
    import itertools

    rows = [row(0.95, fit_time_s=1.00, trial_index=5), row(0.95, fit_time_s=1.09, trial_index=1)]
    rows += [row(0.95, fit_time_s=1.15, trial_index=0), row(0.95, fit_time_s=1.16, trial_index=3)]
    rows += [row(0.95 + 1e-12, fit_time_s=9.0, trial_index=7), row(0.96, fit_time_s=5.0, trial_index=8)]
    orders = {tuple(r["trial_index"] for r in rank_trials(list(p))) for p in itertools.permutations(rows)}
    # 0.96 first; then the fastest (1.00) and what is within 10% of it (1.09) by trial; then 1.15 and 1.16 the same
    # way; 9.0 is far slower, whatever float noise its score carries
    assert orders == {(8, 1, 5, 0, 3, 7)}


def test_a_minimised_metric_ranks_lowest_first():
    rows = [{**row(0.9, trial_index=0), "predict_ms": 2.0}, {**row(0.8, trial_index=1), "predict_ms": 1.0}]
    assert [r["trial_index"] for r in rank_trials(rows, "predict_ms")] == [1, 0]
    assert deciding_rule(rows[1], rows[0], "predict_ms") == "lower predict_ms (1 vs 2)"
