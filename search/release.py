"""Turn the best trial of a search into a release: retrain, score on test, register, gate the alias, card, git tag.

    python search/release.py --tracking-uri URI [--search-id ID] [--repo PATH] [--push] [--force]
    python search/release.py --verify      # rebuild the alias holder from its lineage, compare predictions
    python search/release.py --rollback    # give the alias back to the `previous` holder

Every refusal (bad search, changed data, dirty tree, taken tag) comes before anything is written; a rerun for
the same search finds its version, run and tag instead of adding new ones, and completes what a failed run left.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import tempfile
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make the project importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.releasing.choice import ReleaseError  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = argparse.ArgumentParser(description="Release the best trial of a search as a registered model.")
    p.add_argument("--tracking-uri", default=os.environ.get("MLFLOW_TRACKING_URI") or "sqlite:///mlflow.db")
    p.add_argument("--experiment", default="iris_classification")
    p.add_argument("--search-id", help="default: the experiment's latest FINISHED search")
    p.add_argument("--metric", default="val_accuracy", help="trial metric to rank by (ties: search/common/ranking.py)")
    p.add_argument("--model-name", help="default: iris_classification_best_model for Iris, <dataset>_best_model")
    p.add_argument("--alias", default="champion")
    p.add_argument("--previous-alias", default="previous", help="alias kept by the former holder")
    p.add_argument("--force", action="store_true", help="move the alias even when the new version does not win")
    p.add_argument("--out", type=Path, default=Path("releases"), help="folder for the model card and release info")
    p.add_argument("--repo", type=Path, default=Path.cwd(), help="git repository to tag (default: cwd)")
    p.add_argument("--no-tag", action="store_true", help="skip the git tag (and its checks)")
    p.add_argument("--allow-dirty", action="store_true", help="tag although the working tree is dirty (recorded)")
    p.add_argument("--push", action="store_true", help="push the tag to --remote")
    p.add_argument("--remote", default="origin")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="only verify the alias holder against its lineage")
    mode.add_argument("--rollback", action="store_true", help="only move the alias back to --previous-alias")
    return p


def gate_metric_for(metric: str) -> str:
    """The test-part metric the gate compares for a trial metric."""
    return "test_f1" if metric.endswith("f1") else "test_accuracy"


def release(args: argparse.Namespace, client) -> int:
    """Choose, check, retrain, register, gate, tag and document one release."""
    import mlflow

    from search.common.figures import save_confusion_matrix
    from search.releasing import choice as ch
    from search.releasing import git_tag, registry
    from search.releasing.publish import Context, publish
    from search.releasing.retrain import fit, lineage_of, rebuild_split, score

    exp_id = ch.experiment_id(client, args.experiment)
    chosen = ch.choose(client, exp_id, args.search_id, args.metric)
    print(ch.describe(chosen))
    sid, trial = chosen.search_id, chosen.best
    lineage = lineage_of(chosen.search, trial)
    dataset = chosen.search.data.tags.get("dataset") or Path(lineage.dataset_source).stem
    name = args.model_name or registry.default_model_name(dataset)
    commit = trial.data.tags.get("git_commit") or chosen.search.data.tags.get("git_commit", "unknown")
    existing = registry.find_version(client, name, sid, trial.info.run_id)
    check = None
    if not args.no_tag:
        number = existing.version if existing else registry.next_version(client, name)
        check = git_tag.preflight(args.repo, commit, number, args.allow_dirty, args.push, args.remote)
    split = rebuild_split(lineage)
    pipeline = fit(lineage, split)
    scores = score(pipeline, split)

    run_tags = {
        "run_type": "release",
        "search_id": sid,
        "source_run_id": trial.info.run_id,
        "git_commit": commit,
        "dataset": dataset,
        "search_git_dirty": chosen.search.data.tags.get("git_dirty", "unknown"),
        **lineage.as_tags(),
    }
    run_id = existing.run_id if existing else _release_run(client, exp_id, sid, trial.info.run_id)
    if run_id is None:
        run_id = client.create_run(exp_id, run_name=f"release-{sid}", tags=run_tags).info.run_id
    with mlflow.start_run(run_id=run_id):
        current = client.get_run(run_id)
        client.log_batch(run_id, tags=_tags(run_tags), params=_params(lineage.params, current.data.params))
        model_uri = current.data.tags.get("model_uri")
        if not model_uri:
            model_uri = registry.log_pipeline(pipeline, split.X_dev.head(5))
            client.set_tag(run_id, "model_uri", model_uri)
        if "test_accuracy" not in current.data.metrics:
            mlflow.log_metrics(scores.metrics)
            mlflow.log_dict(scores.report, "test/classification_report.json")
            with tempfile.TemporaryDirectory() as tmp:
                png = save_confusion_matrix(
                    scores.matrix, scores.classes, Path(tmp) / "test_confusion_matrix.png", f"{name}\ntest part"
                )
                mlflow.log_artifact(str(png), "test")
        version_tags = {
            **run_tags,
            "release_run_id": run_id,
            **{k: f"{v:.6g}" for k, v in scores.metrics.items() if "." not in k},
        }
        if args.allow_dirty and check is not None and check.dirty:
            version_tags["released_from_dirty_tree"] = "true"
        if existing is None:
            version = registry.register(client, name, model_uri, run_id, version_tags)
            print(f"registered {name} v{version.version} from release run {run_id}")
        else:
            version = existing
            dirty = {k: v for k, v in version_tags.items() if k == "released_from_dirty_tree"}
            registry.record(client, name, version.version, dirty)
            print(f"found {name} v{version.version}, already registered for this search and trial: no new version")
        if check is not None and check.tag != git_tag.tag_name(version.version):
            check = git_tag.preflight(args.repo, commit, version.version, args.allow_dirty, args.push, args.remote)
        rows = (len(split.y_dev), len(split.y_test))
        ctx = Context(name, version, scores, chosen, lineage, check, run_id, gate_metric_for(args.metric), rows)
        publish(args, client, ctx)
    return 0


def _release_run(client, exp_id: str, search_id: str, trial_run_id: str) -> str | None:
    """A release run left by an earlier attempt for this trial (preferring one with a logged model), or None."""
    query = f"tags.run_type = 'release' and tags.search_id = '{search_id}' and tags.source_run_id = '{trial_run_id}'"
    runs = client.search_runs([exp_id], query, order_by=["attributes.start_time DESC"])
    runs.sort(key=lambda r: "model_uri" not in r.data.tags)
    return runs[0].info.run_id if runs else None


def _tags(tags: dict[str, str]):
    from mlflow.entities import RunTag

    return [RunTag(k, str(v)) for k, v in tags.items()]


def _params(params: dict[str, str], logged: dict[str, str]):
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in params.items() if k not in logged]


QUIET = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


@contextlib.contextmanager
def _quiet():
    """MLflow without telemetry, run links and progress bars, for the duration of one release."""
    saved = {k: os.environ.get(k) for k in QUIET}
    for key, value in QUIET.items():
        os.environ.setdefault(key, value)
    logging.getLogger("mlflow.store.model_registry.abstract_store").setLevel(logging.WARNING)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; errors are one line on stderr and a non-zero exit."""
    args = build_parser().parse_args(argv)
    with _quiet():
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        import mlflow
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        from search.releasing.choice import check_reachable
        from search.releasing.registry import default_model_name, rollback
        from search.releasing.retrain import verify
        from trainables.data import DataError
    except ImportError as exc:  # pragma: no cover - a broken install
        print(f"release: cannot import the project's dependencies: {exc}", file=sys.stderr)
        return 1
    try:
        check_reachable(args.tracking_uri)
        mlflow.set_tracking_uri(args.tracking_uri)
        client = MlflowClient(args.tracking_uri)
        name = args.model_name or default_model_name("iris")
        if args.verify:
            ok, verdict = verify(client, name, args.alias)
            print(verdict)
            return 0 if ok else 1
        if args.rollback:
            print(rollback(client, name, args.alias, args.previous_alias))
            return 0
        return release(args, client)
    except (ReleaseError, DataError) as exc:
        print(f"release: {exc}", file=sys.stderr)
    except MlflowException as exc:
        print(f"release: MLflow refused: {str(exc.message).splitlines()[0]}", file=sys.stderr)
    except KeyboardInterrupt:
        print("release: interrupted; rerun to complete it", file=sys.stderr)
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback; a rerun completes what was done
        first = (str(exc).splitlines() or [""])[0][:300]
        print(f"release: failed ({exc.__class__.__name__}: {first}); rerun to complete it", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
