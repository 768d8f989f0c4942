"""The contract module against docs/tracking.md and against what the tracker and the report use."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from search.common import contract as c
from search.common.trials import Trial, outcome

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "tracking.md").read_text()
# Calls whose string arguments are the called library's own words, not a record's: `simplefilter("error")`.
THEIR_WORDS = frozenset({"simplefilter", "filterwarnings"})


def spelled_names(tree: ast.AST, names: frozenset[str] = c.NAMES) -> list[tuple[int, str]]:
    """(line, name) of every string literal in `tree` equal to one of `names`, in code and inside f-strings' braces;
    docstrings, the text of f-strings and the arguments of `THEIR_WORDS` calls aside."""
    skip = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            skip.add(id(body[0].value))  # a docstring
        if isinstance(node, ast.JoinedStr):
            skip.update(id(v) for v in node.values)
        called = getattr(node, "func", None)
        if isinstance(node, ast.Call) and getattr(called, "attr", getattr(called, "id", None)) in THEIR_WORDS:
            skip.update(id(a) for a in node.args)
    return sorted((n.lineno, n.value) for n in ast.walk(tree)
                  if isinstance(n, ast.Constant) and n.value in names and id(n) not in skip)  # fmt: skip


def test_spelled_names_are_found():
    code = (
        '"""val_accuracy"""\nrow["val_accuracy"]\nf"x{y}outcome"\nz = "accuracy"\n'
        'client.set_tag(run, "promotion", verdict)\nf"{card[\'git_tag\']}"\nwarnings.simplefilter("error")\n'
    )
    assert spelled_names(ast.parse(code)) == [(2, "val_accuracy"), (5, "promotion"), (6, "git_tag")]


def test_recorded_names_are_spelled_in_the_contract_only():
    spelled = []
    for path in sorted(p for package in ("search", "trainables", "cluster") for p in (ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel != "search/common/contract.py":
            spelled += [f"{rel}:{line} {name!r}" for line, name in spelled_names(ast.parse(path.read_text()))]
    assert not spelled, "use search.common.contract's names instead of: " + ", ".join(spelled)


def test_the_names_a_run_records_are_in_the_contracts_list():
    recorded = {c.ERROR, c.BEST_TRIAL_RUN_ID, c.SOURCE_RUN_ID, *c.SEARCH_TAGS, *c.RELEASE_TAGS, *c.ELASTIC_NAMES}
    assert recorded <= c.NAMES


def test_every_recorded_name_is_documented():
    names = [*c.TRIAL_METRICS, *c.SEARCH_PARAMS, *c.SEARCH_METRICS, *c.OUTCOMES, *c.LINEAGE_TAGS, *c.NODE_TAGS]
    names += [c.SEARCH_ID, c.RUN_TYPE, c.PARENT_RUN_ID, c.TRIAL_ID, c.TRIAL_INDEX, c.OUTCOME, c.PARETO_FRONT]
    names += [*c.WARM_TAGS, c.STOP_REASON, *c.STOP_REASONS, *c.ELASTIC_NAMES, *c.SEARCH_TAGS, c.ERROR]
    missing = [n for n in names if f"`{n}`" not in DOC and not re.search(rf"`{re.escape(n)}([=`]|_<)", DOC)]
    assert not missing, f"docs/tracking.md does not name {missing}"


def test_one_outcome_word_each_in_the_tracker_and_the_report():
    config = {"cv_folds": 5}
    assert Trial.from_result(config, {"folds_done": 5}, failed=False).outcome == c.COMPLETED
    assert Trial.from_result(config, {"folds_done": 2}, failed=False).outcome == c.STOPPED
    assert Trial.from_result(config, {}, failed=True).outcome == c.FAILED
    row = {"status": "FINISHED", "val_accuracy": 0.9, "cv_folds": "5", "folds_done": 5.0}
    assert outcome(row) == c.COMPLETED and set(c.OUTCOMES) <= set(c.Outcome)


def test_one_naming_rule_for_every_dataset():
    for dataset in ("iris", "wine", "my_data"):
        experiment = c.experiment_name(dataset)
        assert experiment == f"{dataset}_classification"
        assert c.model_name(experiment) == f"{dataset}_classification_best_model"
        assert c.git_tag_name(c.model_name(experiment), 2) == f"{dataset}_classification_best_model-v2"
    assert c.trial_run_name({"trial_index": 7, "model": "svm", "feature_set": "basic"}) == "0007-svm-basic"
