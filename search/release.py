"""Release the best trial of a search: retrain, score on test, register, gate the alias, model card, git tag.

    python search/release.py                 # the latest finished search of any experiment
    python search/release.py --verify        # rebuild the alias holder from its lineage (--rollback: undo)

Exit codes: 0 done, 1 nothing to do or the work failed, 2 bad input or a server that does not answer, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the project's root on the path, as for every entrypoint
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.common import contract as c  # noqa: E402
from search.common.cli import OneLineParser, check_tracking_uri_form  # noqa: E402
from search.common.connect import DEFAULT_TRACKING_URI, check_tracking_uri  # noqa: E402
from search.common.errors import run_command  # noqa: E402
from search.common.settings import apply_process_settings  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags."""
    p = OneLineParser("release", description="Release the best trial of a search as a registered model.")
    p.add_argument(
        "--tracking-uri",
        default=os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI,
        help=f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI})",
    )
    p.add_argument("--experiment", help="default: the experiment of the latest search")
    p.add_argument("--search-id", help="default: the latest FINISHED search")
    p.add_argument(
        "--metric",
        choices=c.RANK_METRICS,
        help="trial metric to rank by (default: the search's own; ties: search/common/trials.py)",
    )
    p.add_argument("--model-name", help="default: <experiment>_best_model")
    p.add_argument("--alias", default="champion", help="alias the best version holds")
    p.add_argument("--previous-alias", default="previous", help="alias kept by the former holder")
    p.add_argument("--force", action="store_true", help="move the alias even when the new version does not clearly win")
    p.add_argument("--out", type=Path, default=Path("releases"), help="folder of the cards: <out>/<model>/v<N>/")
    p.add_argument("--repo", type=Path, default=Path.cwd(), help="git repository to tag (default: cwd)")
    p.add_argument("--no-tag", action="store_true", help="skip the git tag (and its checks)")
    p.add_argument("--allow-dirty", action="store_true", help="tag although the working tree is dirty (recorded)")
    p.add_argument("--push", action="store_true", help="push the tag to --remote")
    p.add_argument("--remote", default="origin", help="git remote of --push")
    p.add_argument("--max-predict-ms", type=float, help="serving budget: release the best trial within it")
    p.add_argument("--max-model-mb", type=float, help="serving budget on the serialised model's size")
    p.add_argument(
        "--dataset",
        metavar="PATH",
        help="this machine's copy of the search's table, when the search read it elsewhere (a container); "
        "its digest must match the search's",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--verify", action="store_true", help="only verify the alias holder against its lineage")
    mode.add_argument("--rollback", action="store_true", help="only move the alias back to --previous-alias")
    return p


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and turn every error into one line and an exit code."""
    apply_process_settings("release")
    return run_command("release", lambda: _release(build_parser().parse_args(argv)))


def _release(args: argparse.Namespace) -> int:
    check_tracking_uri_form(args.tracking_uri, creates=False)
    import mlflow

    from search.releasing.budget import Budget
    from search.releasing.flow import ReleaseSettings, release, target_model
    from search.releasing.registry import rollback
    from search.releasing.retrain import verify

    settings = ReleaseSettings(**{k: v for k, v in vars(args).items() if k not in ("verify", "rollback")})
    Budget(settings.max_predict_ms, settings.max_model_mb)  # bad limits are refused before any server is asked
    check_tracking_uri(settings.tracking_uri, must_exist=True)
    mlflow.set_tracking_uri(settings.tracking_uri)
    client = mlflow.MlflowClient(settings.tracking_uri)
    if args.verify:
        ok, verdict = verify(client, target_model(settings, client), settings.alias, settings.dataset)
        print(verdict)
        return 0 if ok else 1
    if args.rollback:
        print(rollback(client, target_model(settings, client), settings.alias, settings.previous_alias))
        return 0
    return release(settings, client)


if __name__ == "__main__":
    sys.exit(main())
