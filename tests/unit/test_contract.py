"""The contract module against docs/tracking.md and against what the tracker and the report use."""

from __future__ import annotations

import re
from pathlib import Path

from search.common import contract as c
from search.common.trials import OUTCOMES, Trial, outcome

DOC = (Path(__file__).resolve().parents[2] / "docs" / "tracking.md").read_text()


def test_every_recorded_name_is_documented():
    names = [*c.TRIAL_METRICS, *c.SEARCH_PARAMS, *c.SEARCH_METRICS, *c.OUTCOMES, *c.LINEAGE_TAGS, *c.NODE_TAGS]
    names += [c.SEARCH_ID, c.RUN_TYPE, c.PARENT_RUN_ID, c.TRIAL_ID, c.TRIAL_INDEX, c.OUTCOME, c.PARETO_FRONT]
    names += [*c.WARM_TAGS, c.STOP_REASON, *c.STOP_REASONS, *c.ELASTIC_NAMES]
    missing = [n for n in names if f"`{n}`" not in DOC and not re.search(rf"`{re.escape(n)}([=`]|_<)", DOC)]
    assert not missing, f"docs/tracking.md does not name {missing}"


def test_one_outcome_word_each_in_the_tracker_and_the_report():
    config = {"cv_folds": 5}
    assert Trial.from_result(config, {"folds_done": 5}, failed=False).outcome == c.COMPLETED
    assert Trial.from_result(config, {"folds_done": 2}, failed=False).outcome == c.STOPPED
    assert Trial.from_result(config, {}, failed=True).outcome == c.FAILED
    row = {"status": "FINISHED", "val_accuracy": 0.9, "cv_folds": "5", "folds_done": 5.0}
    assert outcome(row) == c.COMPLETED and set(c.OUTCOMES) <= set(OUTCOMES)


def test_one_naming_rule_for_every_dataset():
    for dataset in ("iris", "wine", "my_data"):
        experiment = c.experiment_name(dataset)
        assert experiment == f"{dataset}_classification"
        assert c.model_name(experiment) == f"{dataset}_classification_best_model"
        assert c.git_tag_name(c.model_name(experiment), 2) == f"{dataset}_classification_best_model-v2"
    assert c.trial_run_name({"trial_index": 7, "model": "svm", "feature_set": "basic"}) == "0007-svm-basic"
