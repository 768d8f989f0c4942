"""The lines a search ends with: where to look, the study, release and report, as a user can act on them."""

from __future__ import annotations

import pytest

from search.searching.driver import SearchOutcome, commands_dir, print_next_steps

OUTCOME = SearchOutcome("abc123", "iris_classification", "7", "run0", [], 0, 0)


def lines(capsys, uri: str, storage: str | None = None) -> dict[str, str]:
    print_next_steps(OUTCOME, uri, storage)
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in capsys.readouterr().out.splitlines()}


@pytest.fixture(autouse=True)
def outside_compose(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no virtual environment here: the commands on the PATH
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    monkeypatch.delenv("STUDY_DASHBOARD_URL", raising=False)
    monkeypatch.delenv("RAY_DASHBOARD_URL", raising=False)


def test_a_local_store_is_looked_at_with_mlflow_ui(capsys):
    out = lines(capsys, "sqlite:///mlflow.db")
    assert out["look"].startswith("mlflow ui --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1")
    assert out["look"].endswith("http://127.0.0.1:5000/#/experiments/7/runs")
    assert out["study"] == "python cluster/study_dashboard.py --search-id abc123"
    assert out["release"] == "python search/release.py --search-id abc123"


def test_a_server_is_opened_where_the_driver_reaches_it_without_its_login(capsys):
    out = lines(capsys, "http://alice:secret@127.0.0.1:5000", "/data/runs")
    assert out["look"] == "http://127.0.0.1:5000/#/experiments/7/runs"
    assert out["study"] == "python cluster/study_dashboard.py --search-id abc123 --storage-path /data/runs"
    assert "secret" not in out["release"] and out["release"].endswith("--tracking-uri http://127.0.0.1:5000")


def test_in_compose_the_browsers_addresses_replace_the_containers(capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_UI_URL", "http://127.0.0.1:5001/")
    monkeypatch.setenv("STUDY_DASHBOARD_URL", "http://127.0.0.1:8081")
    monkeypatch.setenv("RAY_DASHBOARD_URL", "http://127.0.0.1:8266")
    head = SearchOutcome("abc123", "iris_classification", "7", "run0", [], 0, 0, "http://10.89.1.9:8265")
    print_next_steps(head, "http://mlflow:5000", "/ray_results")
    out = {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in capsys.readouterr().out.splitlines()}
    assert out["ray"] == "http://127.0.0.1:8266", "the head's own address means nothing on the host"
    assert out["look"] == "http://127.0.0.1:5001/#/experiments/7/runs"
    assert out["study"].startswith("docker compose --profile dashboard run --rm --service-ports study-dashboard")
    assert out["study"].endswith("--search-id abc123, then http://127.0.0.1:8081")
    assert "mlflow:5000" not in "\n".join(out.values()), "a container address means nothing on the host"
    assert out["login"].startswith('eval "$(docker compose exec -T ray-head python cluster/credentials.py show)"')
    assert out["release"] == "python search/release.py --search-id abc123 --tracking-uri http://127.0.0.1:5001"
    assert out["report"] == "python search/report.py --search-id abc123 --tracking-uri http://127.0.0.1:5001"


def test_the_commands_are_those_of_the_venv_that_ran_the_search(capsys, monkeypatch, tmp_path):
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr("sys.executable", str(tmp_path / ".venv" / "bin" / "python"))
    out = lines(capsys, "sqlite:///mlflow.db")
    assert out["look"].startswith(".venv/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db")
    assert out["study"] == ".venv/bin/python cluster/study_dashboard.py --search-id abc123"
    assert out["release"] == ".venv/bin/python search/release.py --search-id abc123"
    assert out["report"] == ".venv/bin/python search/report.py --search-id abc123"
    assert commands_dir("/usr/bin/python3") == "" and commands_dir(str(tmp_path / "python")) == ""


def test_a_clusters_dashboard_is_printed_where_ray_says_it_is(capsys):
    print_next_steps(SearchOutcome("abc123", "e", "7", "run0", [], 0, 0, "http://127.0.0.1:8266"), "sqlite:///m.db")
    assert "ray:     http://127.0.0.1:8266" in capsys.readouterr().out.splitlines()


def test_the_summary_lists_the_best_trials_first_as_one_aligned_table(capsys):
    from search.common.trials import Trial, rank_trials
    from search.searching.driver import print_summary

    scores = [0.91, 0.97, 0.93]
    trials = [
        Trial(
            i,
            {"model": "knn", "feature_set": "basic", "cv_folds": "5"},
            status="FINISHED",
            run_id=f"run{i}",
            metrics={"val_accuracy": s, "val_f1": s, "fit_time_s": 0.01, "folds_done": 5},
        )  # fmt: skip
        for i, s in enumerate(scores)
    ]
    print_summary(SearchOutcome("abc123", "iris_classification", "7", "run0", rank_trials(trials), 1, 2))
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "best trials of search abc123 (3 completed, 2 stopped early, 1 failed):"
    head, rule, *rows, blank, last = out[1:]
    assert head.split() == ["trial_index", "model", "feature_set", "val_accuracy", "val_f1", "fit_time_s", "run_id"]
    assert [row.split()[-1] for row in rows] == ["run1", "run2", "run0"] and not blank and last == "search_id: abc123"
    assert (
        len(head) == len(rule) and len({len(row) for row in rows}) == 1 and all(line == line.rstrip() for line in out)
    )
    assert {row.index("0.9") + 6 for row in rows} == {head.index("val_accuracy") + 12}  # right-aligned under it
