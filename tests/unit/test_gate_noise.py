"""The alias gate weighs a difference against what the test part can tell apart: an exact McNemar test on the same
rows (counts in, verdict out), the metric's direction from the contract, and --force."""

from __future__ import annotations

import pytest
from mlflow.entities.model_registry import ModelVersion, ModelVersionTag
from scipy.stats import binomtest

from search.common import contract
from search.releasing import paired
from search.releasing.paired import Paired, compare, fewest_discordant, needed
from search.releasing.registry import gate, lower_is_better

SAME = {"dataset_digest": "sha256:d", "split_seed": "0", "test_size": "0.2"}


def test_one_row_of_thirty_cannot_tell_two_models_apart():
    one = Paired(n_rows=30, new_right=30, holder_right=29, new_only=1, holder_only=0)
    assert not one.new_is_better and one.p_value == 1.0
    said = one.describe("v3", "v2")
    assert said.startswith("v3 got 30/30, v2 29/30: 1 row of difference, 1 discordant row (1 for v3, 0 for v2)")
    assert "at least 6 discordant rows all one way (0.20 of accuracy on 30 rows, p < 0.05)" in said


def test_six_rows_all_one_way_can_and_five_cannot():
    assert Paired(30, 30, 24, 6, 0).new_is_better and Paired(30, 30, 24, 6, 0).p_value == pytest.approx(2 / 2**6)
    assert not Paired(30, 29, 24, 5, 0).new_is_better  # p = 0.0625
    assert not Paired(30, 24, 30, 0, 6).new_is_better  # significant, but the holder's way
    assert fewest_discordant() == 6 and fewest_discordant(0.01) == 8


def test_discordant_rows_both_ways_need_a_clear_majority():
    assert needed(5) is None and needed(6) == 6 and needed(8) == 8 and needed(12) == 10
    mixed = Paired(100, 90, 84, 8, 2)  # 6 rows better on accuracy, but 2 of the 10 discordant go the holder's way
    assert not mixed.new_is_better and "at least 9 of these 10 discordant rows one way" in mixed.margin()
    assert Paired(100, 91, 84, 9, 2).new_is_better is False  # 9 of 11 is not enough: p = 0.065
    assert Paired(100, 91, 82, 10, 1).new_is_better
    for k, n in [(9, 11), (10, 11), (7, 20)]:
        assert paired.p_value(k, n - k) == pytest.approx(binomtest(k, n).pvalue)


def test_counts_come_from_per_row_correctness_on_the_same_rows():
    new = [True] * 28 + [True, False]
    held = [True] * 27 + [False, False, True]
    got = compare(new, held)
    assert (got.n_rows, got.new_right, got.holder_right, got.new_only, got.holder_only) == (30, 29, 28, 2, 1)
    card = got.as_dict()
    assert card["discordant"] == 3 and card["test"].startswith("exact McNemar") and card["new_is_better"] is False
    with pytest.raises(ValueError, match="not the same test rows"):
        compare([True], [True, False])


def versions(new_score: float, held_score: float, metric: str = "test_accuracy") -> tuple[ModelVersion, ModelVersion]:
    def tags(score: float) -> list[ModelVersionTag]:
        return [ModelVersionTag(k, v) for k, v in {**SAME, metric: str(score)}.items()]

    return ModelVersion("m", "3", 0, tags=tags(new_score)), ModelVersion("m", "2", 0, tags=tags(held_score))


def test_the_gate_keeps_the_holder_within_the_margin_and_force_moves_it():
    new, held = versions(1.0, 29 / 30)
    asked: list[str] = []

    def rows(holder: ModelVersion) -> Paired:
        asked.append(holder.version)
        return Paired(30, 30, 29, 1, 0)

    kept = gate(None, new, 1.0, "test_accuracy", held, False, None, rows)
    assert (kept.move, kept.verdict, asked) == (False, contract.KEPT, ["2"])
    assert kept.reason.startswith("test_accuracy 1.0000 vs v2's 0.9667, but the test part cannot tell them apart")
    assert "v3 got 30/30, v2 29/30" in kept.reason and kept.reason.endswith("the holder stays (--force moves it)")
    assert kept.paired == Paired(30, 30, 29, 1, 0)
    forced = gate(None, new, 1.0, "test_accuracy", held, True, None, rows)
    assert forced.move and forced.verdict == contract.FORCED and "--force: moved although" in forced.reason


def test_the_gate_promotes_what_the_test_part_tells_apart():
    new, held = versions(1.0, 0.8)
    moved = gate(None, new, 1.0, "test_accuracy", held, False, None, lambda _: Paired(30, 30, 24, 6, 0))
    assert moved.move and moved.verdict == contract.PROMOTED
    assert moved.reason.startswith("test_accuracy 1.0000 vs v2's 0.8000, told apart on the same rows: v3 got 30/30")


def test_a_worse_score_is_not_compared_row_by_row_and_a_failed_load_keeps_the_holder():
    new, held = versions(0.9, 0.95)

    def never(_: ModelVersion) -> Paired:
        raise AssertionError("no row-by-row comparison for a score that does not beat the holder's")

    worse = gate(None, new, 0.9, "test_accuracy", held, False, None, never)
    assert not worse.move and "test_accuracy 0.9000 does not beat v2's 0.9500" in worse.reason

    def unloadable(_: ModelVersion) -> Paired:
        raise OSError("artifact gone")

    new, held = versions(1.0, 0.8)
    lost = gate(None, new, 1.0, "test_accuracy", held, False, None, unloadable)
    assert not lost.move and lost.verdict == contract.KEPT and "could not be loaded" in lost.reason
    assert "artifact gone" in lost.reason


def test_the_direction_of_the_metric_comes_from_the_contract(monkeypatch):
    assert not lower_is_better("test_accuracy") and lower_is_better("fit_time_s")
    assert lower_is_better("test_log_loss") and lower_is_better("val_log_loss")
    monkeypatch.setattr(contract, "MINIMISED", tuple(m for m in contract.MINIMISED if "log_loss" not in m))
    assert not lower_is_better("test_log_loss")
    monkeypatch.undo()
    new, held = versions(0.2, 0.3, "test_log_loss")
    moved = gate(None, new, 0.2, "test_log_loss", held, False, None, lambda _: Paired(30, 30, 20, 10, 0))
    assert moved.move and moved.verdict == contract.PROMOTED  # lower log loss is better
    new, held = versions(0.4, 0.3, "test_log_loss")
    assert "does not beat" in gate(None, new, 0.4, "test_log_loss", held, False, None, None).reason
