"""The alias gate, --force, rollback, completing a half-done release, and --verify on changed data."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow import MlflowClient
from release_helpers import BEST, GOOD, WEAK, git, make_repo, make_search, run_cli, snapshot, trial

from search.common.errors import CommandError
from search.releasing import publish
from trainables.data import load_dataset

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(mlflow_server) -> MlflowClient:
    return MlflowClient(mlflow_server)


def aliases(client: MlflowClient, name: str) -> dict[str, str]:
    return dict(client.get_registered_model(name).aliases)


def test_gate_weighs_the_test_part_force_previous_and_rollback(mlflow_server, client, tmp_path):
    """On Iris' 30 test rows WEAK gets 24 right, GOOD 29 (WEAK's errors and one more), BEST all 30."""
    repo, commit = make_repo(tmp_path / "repo")
    name, exp = "gate_model", "gate_exp"
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--model-name", name, "--repo", str(repo)]
    base += ["--out", str(tmp_path / "out")]
    make_search(client, exp, [trial(WEAK, 0.96)], commit)
    assert run_cli(*base)[0] == 0
    assert aliases(client, name) == {"champion": "1"}

    good = make_search(client, exp, [trial(GOOD, 0.97)], commit)[0]  # 5 rows better: still within the margin
    code, out, _ = run_cli(*base)
    assert code == 0 and "@champion stays on v1: test_accuracy 0.9667 vs v1's 0.8000, but the test part cannot" in out
    assert "v2 got 29/30, v1 24/30: 5 rows of difference, 5 discordant rows (5 for v2, 0 for v1)" in out
    assert "at least 6 discordant rows all one way (0.20 of accuracy on 30 rows, p < 0.05)" in out
    assert aliases(client, name) == {"champion": "1"}
    version = client.get_model_version(name, "2")
    assert json.loads(version.tags["promotion_paired"])["holder_only"] == 0
    assert version.tags["promotion"] == "kept" and "the test part cannot tell them apart" in version.description
    card = json.loads((tmp_path / "out" / name / "v2" / "model_card.json").read_text())
    assert card["promotion"]["paired"]["new_only"] == 5 and card["promotion"]["paired"]["p_value"] == 0.0625
    markdown = (tmp_path / "out" / name / "v2" / "model_card.md").read_text()
    assert "exact McNemar test" in markdown and "| holder_right | 24 |" in markdown

    # Two trials tie on every score, their fit times 14 microseconds apart: the earlier trial is chosen.
    tied = [trial(BEST, 0.98, val_f1=0.98, fit_time_s=0.012014), trial(GOOD, 0.98, val_f1=0.98, fit_time_s=0.012)]
    best = make_search(client, exp, tied, commit)[0]
    code, out, _ = run_cli(*base)
    assert code == 0 and "decided by: tie on val_accuracy, val_f1, fit_time_s (0.01201 vs 0.012 s: within 10%" in out
    assert "earlier trial (0 vs 1)" in out
    assert "@champion -> v3: test_accuracy 1.0000 vs v1's 0.8000, told apart on the same rows: v3 got 30/30" in out
    assert aliases(client, name) == {"champion": "3", "previous": "1"}
    assert "`@champion`: promoted" in client.get_model_version(name, "3").description
    assert git(repo, "tag", "-l", f"{name}-v*").split() == [f"{name}-v1", f"{name}-v2", f"{name}-v3"]

    code, out, _ = run_cli(*base, "--search-id", good, "--force")
    assert code == 0 and "--force: moved although test_accuracy 0.9667 does not beat v3's 1.0000" in out
    assert aliases(client, name) == {"champion": "2", "previous": "3"}
    forced = client.get_model_version(name, "2").tags
    assert forced["forced"] == "true" and "promotion_paired" not in forced  # the earlier comparison no longer applies
    card = (tmp_path / "out" / name / "v2" / "model_card.json").read_text()
    assert '"verdict": "forced"' in card and '"paired"' not in card

    # The first user's story: one row better on 30 keeps the holder, and --force moves the alias.
    code, out, _ = run_cli(*base, "--search-id", best)
    assert code == 0 and "@champion stays on v2: test_accuracy 1.0000 vs v2's 0.9667, but the test part cannot" in out
    assert "v3 got 30/30, v2 29/30: 1 row of difference, 1 discordant row (1 for v3, 0 for v2)" in out
    assert aliases(client, name) == {"champion": "2", "previous": "3"}
    code, out, _ = run_cli(*base, "--search-id", best, "--force")
    assert code == 0 and "--force: moved although test_accuracy 1.0000 vs v2's 0.9667, but the test part cannot" in out
    assert aliases(client, name) == {"champion": "3", "previous": "2"}

    code, out, _ = run_cli(*base, "--rollback")
    assert code == 0 and "rolled back gate_model@champion: v2 (was v3)" in out
    assert aliases(client, name) == {"champion": "2", "previous": "3"}
    code, out, _ = run_cli(*base, "--search-id", best)  # a rolled-back version does not come back by itself
    assert code == 0 and aliases(client, name) == {"champion": "2", "previous": "3"}
    assert "v3 was rolled back from the alias" in out
    assert len(client.search_model_versions(f"name = '{name}'")) == 3


@pytest.mark.fault("release crashed half-way, completed by the next run")
def test_half_done_release_is_completed_by_the_next(mlflow_server, client, tmp_path, monkeypatch):
    repo, commit = make_repo(tmp_path / "repo")
    name, exp = "halfway_model", "halfway_exp"
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--model-name", name, "--repo", str(repo)]
    base += ["--out", str(tmp_path / "out")]
    make_search(client, exp, [trial(GOOD, 0.96)], commit)

    def crash(*args, **kwargs):
        raise CommandError("simulated crash before the git tag")

    monkeypatch.setattr(publish, "tag_commit", crash)
    code, _, err = run_cli(*base)
    assert code == 1 and "simulated crash" in err
    version = client.get_model_version(name, "1")
    assert "release_complete" not in version.tags and git(repo, "tag", "-l") == ""
    assert client.get_run(version.run_id).info.status == "FAILED"
    monkeypatch.undo()

    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(repo, "remote", "add", "origin", str(remote))
    code, out, err = run_cli(*base, "--push")
    assert code == 0 and "no new version" in out and f"pushed {name}-v1 to origin" in out, err
    version = client.get_model_version(name, "1")
    assert version.tags["release_complete"] == "true" and git(repo, "tag", "-l") == f"{name}-v1"
    assert git(remote, "rev-parse", f"{name}-v1^{{commit}}") == commit
    assert client.get_run(version.run_id).info.status == "FINISHED"
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    runs = client.search_runs([client.get_experiment_by_name(exp).experiment_id], "tags.run_type = 'release'")
    assert len(runs) == 1


@pytest.mark.bad_input("release --verify: data changed since the search")
def test_verify_fails_when_the_csv_changes(mlflow_server, client, tmp_path):
    data = load_dataset("iris")
    csv = tmp_path / "flowers.csv"
    data.X.assign(species=data.y).to_csv(csv, index=False)
    name, exp = "flowers_exp_best_model", "flowers_exp"
    make_search(client, exp, [trial(BEST, 0.98)], "unknown", dataset=str(csv), target="species")
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--no-tag", "--out", str(tmp_path / "out")]
    code, out, err = run_cli(*base)
    assert code == 0 and f"registered {name} v1" in out, err  # <experiment>_best_model
    code, out, _ = run_cli(*base, "--verify", "--model-name", name)
    assert code == 0 and out.startswith("verify OK")

    frame = pd.read_csv(csv)
    frame.loc[0, "sepal length (cm)"] += 0.1
    frame.to_csv(csv, index=False)
    code, out, _ = run_cli(*base, "--verify", "--model-name", name)
    assert code == 1 and out.startswith("verify FAILED") and "changed since the search" in out
    before = snapshot(client, name)
    code, _, err = run_cli(*base)  # a release from changed data is refused before anything is written
    assert code == 1 and "changed since the search" in err and snapshot(client, name) == before


@pytest.mark.bad_input("release: a search's table not on this machine (read in a container)")
def test_a_table_read_elsewhere_is_refused_then_released_from_this_machines_copy(mlflow_server, client, tmp_path):
    """A search recorded a table this machine does not have (as a search in the ray-head container records its
    path): release and --verify refuse in one line naming it and --dataset, with nothing written; a copy that is
    not the same table is refused; this machine's copy through --dataset releases and verifies."""
    data = load_dataset("iris")
    elsewhere = tmp_path / "head" / "flowers.csv"  # the container's path: written, recorded, then gone from here
    elsewhere.parent.mkdir()
    data.X.assign(species=data.y).to_csv(elsewhere, index=False)
    name, exp = "elsewhere_exp_best_model", "elsewhere_exp"
    make_search(client, exp, [trial(BEST, 0.98)], "unknown", dataset=str(elsewhere), target="species")
    copy = tmp_path / "copy.csv"
    elsewhere.rename(copy)
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--no-tag", "--out", str(tmp_path / "out")]

    code, out, err = run_cli(*base)
    assert code == 2 and not out.count("registered") and len(err.strip().splitlines()) == 1, err
    assert f"the search's table {elsewhere} is not on this machine" in err and "--dataset PATH" in err
    assert not client.search_registered_models(f"name = '{name}'") and not (tmp_path / "out").exists()
    runs = client.search_runs([client.get_experiment_by_name(exp).experiment_id], "tags.run_type = 'release'")
    assert not runs, "a refused release writes nothing"

    other = tmp_path / "other.csv"
    pd.read_csv(copy).iloc[1:].to_csv(other, index=False)
    code, _, err = run_cli(*base, "--dataset", str(other))
    assert code == 2 and f"--dataset {other} is not the search's table: digest" in err
    assert not client.search_registered_models(f"name = '{name}'")

    code, out, err = run_cli(*base, "--dataset", str(copy))
    assert code == 0 and f"registered {name} v1" in out, err
    code, _, err = run_cli(*base, "--verify", "--model-name", name)
    assert code == 2 and "is not on this machine" in err and "--dataset PATH" in err
    code, out, err = run_cli(*base, "--verify", "--model-name", name, "--dataset", str(copy))
    assert code == 0 and out.startswith("verify OK"), err


def costly(params: dict, val_accuracy: float, predict_ms: float, model_bytes: float) -> dict:
    spec = trial(params, val_accuracy)
    spec["metrics"].update({"predict_ms": predict_ms, "model_bytes": model_bytes})
    return spec


@pytest.mark.bad_input("release: a serving budget that no trial fits")
def test_a_serving_budget_picks_the_best_trial_within_it(mlflow_server, client, tmp_path):
    name, exp = "budget_exp_best_model", "budget_exp"
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--no-tag", "--out", str(tmp_path / "out")]
    trials = [costly(BEST, 0.99, 90.0, 2e6), costly(GOOD, 0.96, 15.0, 4e4), costly(WEAK, 0.90, 5.0, 1e3)]
    search_id, runs = make_search(client, exp, trials, "unknown")
    before = snapshot(client, name)
    code, _, err = run_cli(*base, "--max-predict-ms", "0.1")  # rules out every trial
    assert code == 1 and err.count("\n") == 1 and "no trial fits the budget predict_ms <= 0.1 ms" in err
    assert snapshot(client, name) == before
    code, out, err = run_cli(*base, "--max-predict-ms", "50", "--max-model-mb", "0.5")
    assert code == 0, err
    assert "ruled out 1 of 3 completed trials" in out and "90 ms > 50 ms" in out
    version = client.get_model_version_by_alias(name, "champion")
    assert version.tags["source_run_id"] == runs[1]  # the best within budget, not the best-scoring trial
    card = json.loads((tmp_path / "out" / name / "v1" / "model_card.json").read_text())
    assert card["serving"]["predict_ms"] > 0 and card["serving"]["model_bytes"] > 0
    assert float(version.tags["model_bytes"]) == pytest.approx(card["serving"]["model_bytes"], rel=1e-5)


def test_the_gate_refuses_a_champion_whose_measured_cost_breaks_the_budget(mlflow_server, client, tmp_path):
    name, exp = "budget_gate_exp_best_model", "budget_gate_exp"
    base = ["--tracking-uri", mlflow_server, "--experiment", exp, "--no-tag", "--out", str(tmp_path / "out")]
    # The search recorded an impossibly low cost, so the trial fits the budget; the release measures the truth.
    make_search(client, exp, [costly(GOOD, 0.96, 1e-6, 1e3)], "unknown")
    code, out, err = run_cli(*base, "--max-predict-ms", "0.0001", "--force")
    assert code == 0, err
    assert "registered budget_gate_exp_best_model v1" in out and "@champion not set" in out
    assert "measured at release, " in out and " ms > 0.0001 ms: no version gets it" in out
    assert aliases(client, name) == {}  # --force does not lift a budget
    version = client.get_model_version(name, "1")
    assert version.tags["promotion"] == "over_budget" and version.tags["serving_budget"] == "predict_ms <= 0.0001 ms"
    assert float(version.tags["predict_ms"]) > 0.0001  # what the gate measured, on the version

    code, out, err = run_cli(*base)  # without a budget the same version may take the alias
    assert code == 0 and aliases(client, name) == {"champion": "1"}, out + err
