"""The model card, its Markdown rendering and the release info, from plain values."""

from __future__ import annotations

import json

from search.releasing.model_card import build_card, iso, release_info, render_markdown, summary, write


def card() -> dict:
    return build_card(
        model_name="iris_classification_best_model",
        version="3",
        created_at=iso(1_700_000_000_000),
        run_id="r" * 32,
        trial_metrics={"val_accuracy": 0.95, "val_f1": 0.949, "fit_time_s": 0.01, "folds_done": 5.0},
        parameters={"model": "svm", "feature_set": "squared", "C": "3.2", "seed": "0"},
        test_metrics={
            "test_accuracy": 0.9667,
            "test_f1": 0.9666,
            "per_class": {"setosa": {"precision": 1.0, "recall": 1.0, "f1-score": 1.0, "support": 10}},
        },
        lineage={
            "git_commit": "abc",
            "dataset": "iris",
            "dataset_digest": "sha256:x",
            "search_id": "s1",
            "trial_run_id": "t1",
            "n_dev_rows": 120,
            "n_test_rows": 30,
        },  # fmt: skip
        selection={
            "metric": "val_accuracy",
            "tie_break": "higher val_f1",
            "decided_by": "higher val_accuracy",
            "runner_up": "t2",
        },  # fmt: skip
        promotion={"alias": "champion", "verdict": "promoted", "reason": "no version held the alias"},
        git_tag="model-v3",
    )


def test_card_has_the_required_fields():
    c = card()
    for key in ("model_name", "version", "created_at", "metrics", "parameters", "run_id", "lineage", "test_metrics"):
        assert key in c
    assert c["created_at"] == "2023-11-14T22:13:20Z"
    assert c["model_uri"] == "models:/iris_classification_best_model/3"
    assert "folds_done" not in c["metrics"] and c["metrics"]["val_accuracy"] == 0.95
    assert c["intended_use"] and len(c["limitations"]) >= 3
    assert "120 rows" in c["limitations"][0] and "30" in c["limitations"][0]


def test_markdown_renders_every_section():
    text = render_markdown(card())
    assert text.startswith("# Model card: iris_classification_best_model v3")
    for heading in ("Test metrics", "Parameters", "Lineage", "Selection", "Promotion", "Intended use", "Limitations"):
        assert f"## {heading}" in text
    assert "| test_accuracy | 0.9667 |" in text and "| setosa | 1.0000 | 1.0000 | 1.0000 | 10 |" in text
    assert "Git tag `model-v3`" in text and "Runner-up: trial run `t2`" in text


def test_release_info_and_files(tmp_path):
    c = card()
    info = release_info(c, "r" * 32, "3")
    assert info["alias_uri"] == "models:/iris_classification_best_model@champion"
    assert info["test_metrics"] == {"test_accuracy": 0.9667, "test_f1": 0.9666}
    assert "--env-manager local" in info["serve"] and "127.0.0.1" in info["serve"]
    paths = write(tmp_path / "releases", c, info)
    assert [p.name for p in paths] == ["model_card.json", "model_card.md", "model_release_info.json"]
    assert json.loads(paths[0].read_text()) == c
    assert json.loads(paths[2].read_text())["source_run_id"] == "t1"


def test_the_summary_for_the_registry_page_and_the_gates_margin_in_the_card():
    from search.releasing.paired import Paired

    c = card()
    kept = "test_accuracy 1.0000 vs v2's 0.9667, but the test part cannot tell them apart: v3 got 30/30, v2 29/30"
    c["promotion"] = {"alias": "champion", "verdict": "kept", "reason": kept,
                      "paired": Paired(30, 30, 29, 1, 0).as_dict()}  # fmt: skip
    text = summary(c)
    assert text.startswith("**svm** on feature set **squared**: search `s1`, trial run `t1`")
    assert "Held-out test part (30 rows): test_accuracy 0.9667, test_f1 0.9666." in text
    assert f"`@champion`: kept: {kept}." in text and "git tag `model-v3`" in text
    markdown = render_markdown(c)
    assert "exact McNemar test (two-sided binomial on the discordant rows), p < 0.05 to move" in markdown
    assert "| new_only | 1 |" in markdown and "at least 6 discordant rows all one way" in markdown
