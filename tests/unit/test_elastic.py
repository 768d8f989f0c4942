"""A cluster that breathes, without a cluster: a trial resumed from its kept folds scores as an undisturbed one,
the rule that says when a fold is kept, what a trial's run records of its lost attempts, and the concurrency that
follows the cluster's CPUs."""

from __future__ import annotations

import pytest
from ray.tune.search import Searcher

from search.common import contract as c
from search.common.trials import Trial
from search.searching.elastic import FoldLedger, SearchLimiter, lost_tags, nodes_used
from trainables import folds
from trainables.data import load_dataset, split_dataset
from trainables.folds import FoldKeeper, FoldProgress, storage_reachable
from trainables.space import config_from_params
from trainables.trainable import cross_validate

SPLIT = split_dataset(load_dataset("wine"), 0.2, 0)
FOREST = {"n_estimators": 20, "max_depth": 5, "min_samples_leaf": 2, "max_features": "sqrt"}
CONFIG = config_from_params({"model": "random_forest", "feature_set": "squared", "seed": 3, "cv_folds": 5, **FOREST})


@pytest.mark.parametrize("lost_after", [1, 3])
def test_a_trial_resumed_from_its_kept_folds_scores_as_an_undisturbed_one(lost_after):
    kept: list[str] = []  # the checkpoint's text after each fold, as a lost attempt would have left it
    whole = cross_validate(CONFIG, SPLIT.X_dev, SPLIT.y_dev, on_fold=lambda progress: kept.append(progress.to_json()))
    resume = FoldProgress.from_json(kept[lost_after - 1])
    fitted = []
    resumed = cross_validate(CONFIG, SPLIT.X_dev, SPLIT.y_dev, on_fold=lambda p: fitted.append(p.done), resume=resume)
    assert resume.done == 5 and fitted == list(range(lost_after + 1, 5)), "kept folds are not fitted again"
    for key in (c.VAL_ACCURACY, c.VAL_F1, c.TRAIN_ACCURACY, c.TRAIN_F1, c.PREDICT_MS, c.MODEL_BYTES, c.FOLDS_DONE):
        assert resumed[key] == whole[key], key  # to the last bit
    assert resumed[c.CONFUSION_MATRIX] == whole[c.CONFUSION_MATRIX]


def test_folds_are_kept_every_reported_fold_or_after_enough_work_and_only_where_every_node_reads_them(
    tmp_path, monkeypatch
):
    assert FoldKeeper(every_fold=True, reachable=True).wants()
    assert not FoldKeeper(every_fold=True, reachable=False).wants()
    once = FoldKeeper(every_fold=False, reachable=True)
    assert not once.wants(), "a cheap fold of a trial that reports once is not worth a checkpoint"
    assert FoldKeeper(every_fold=False, reachable=True, keep_after_s=0).wants()
    monkeypatch.setattr(folds, "KEEP_AFTER_S", 0.0)
    assert FoldKeeper(every_fold=False, reachable=True).wants()
    journal = tmp_path / "journal.log"
    assert not storage_reachable(str(journal)) and not storage_reachable(None)
    journal.write_text("")
    assert storage_reachable(str(journal))


def test_a_trial_run_records_the_folds_it_took_over_and_redid():
    ledger = FoldLedger()
    ledger.result("a", {c.FOLDS_DONE: 1, c.FOLDS_RESTORED: 0})
    ledger.result("a", {c.FOLDS_DONE: 2, c.FOLDS_RESTORED: 0})
    assert ledger.lost("a", "node died")[c.LOST_ATTEMPTS] == "1"  # reported 2 folds; its checkpoint holds 2
    ledger.result("a", {c.FOLDS_DONE: 3, c.FOLDS_RESTORED: 2})
    ledger.result("b", {c.FOLDS_DONE: 2, c.FOLDS_RESTORED: 0})
    ledger.lost("b", "node died")  # reported 2 folds, but no storage to keep them: starts over
    ledger.result("b", {c.FOLDS_DONE: 1, c.FOLDS_RESTORED: 0})
    lost_a = {c.LOST_ATTEMPTS: "1", f"{c.LOST_ATTEMPT}_1": "node died"}
    assert ledger.tags("a", {c.FOLDS_RESTORED: 2}) == {**lost_a, c.FOLDS_RESTORED: "2", c.FOLDS_REDONE: "0"}
    assert ledger.tags("b", {c.FOLDS_RESTORED: 0})[c.FOLDS_REDONE] == "2"
    assert ledger.tags("c", {c.FOLDS_RESTORED: 0}) == {}, "an undisturbed trial's run carries neither"
    again = ledger.lost("b", "drained")
    assert again == {c.LOST_ATTEMPTS: "2", f"{c.LOST_ATTEMPT}_1": "node died", f"{c.LOST_ATTEMPT}_2": "drained"}
    assert lost_tags(1, "x") == {c.LOST_ATTEMPTS: "1", f"{c.LOST_ATTEMPT}_1": "x"}


class Proposals(Searcher):
    """A searcher that proposes an empty config whenever asked: the limiter alone decides how many run."""

    def suggest(self, trial_id: str) -> dict:
        return {}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        pass


def test_the_concurrency_follows_the_clusters_cpus_as_tune_asks_for_trials(capsys):
    now = [0]
    limiter = SearchLimiter(Proposals(), max_concurrent=1, cpus=lambda: now[0], every_s=0)
    seen, running = [], 0
    for step, cpus in enumerate([1, 3, 3, 2, 0]):
        now[0] = cpus
        while limiter.suggest(f"{step}-{running}") is not None:  # Tune asks until the limiter says no
            running += 1
        seen.append((limiter.max_concurrent, running))
        for i in range(running):  # every trial ends before the next step
            limiter.on_trial_complete(f"{step}-{i}", {"score": 1})
        running = 0
    assert seen == [(1, 1), (3, 3), (3, 3), (2, 2), (1, 1)], "never below one trial at a time"
    assert capsys.readouterr().out.count("trials at once") == 3
    fixed = SearchLimiter(Proposals(), max_concurrent=1, follow=False, cpus=lambda: 8, every_s=0)
    assert fixed.suggest("a") is not None and fixed.suggest("b") is None, "--max-concurrent stays as given"


def test_nodes_used_counts_the_distinct_nodes_of_the_trials():
    rows = [Trial.from_result({}, {c.NODE: n}) for n in ("a", "b", "a")] + [Trial.from_result({}, {})]
    assert nodes_used(rows) == 2
