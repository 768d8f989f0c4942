"""Write a search's report from MLflow alone: Markdown, figures and a per-trial CSV, also logged to its parent run.

    python search/report.py                  # the latest search of any experiment, into reports/<search_id>/
    python search/report.py [--experiment NAME] [--search-id ID] [--tracking-uri URI] [--out DIR]

Exit codes: 0 written, 1 nothing to report, 2 bad input or a server that does not answer, 130 interrupted.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the project's root on the path, as for every entrypoint
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.common.cli import OneLineParser, check_tracking_uri_form, check_writable  # noqa: E402
from search.common.connect import DEFAULT_TRACKING_URI  # noqa: E402
from search.common.errors import run_command  # noqa: E402
from search.common.settings import apply_process_settings  # noqa: E402
from search.reporting.write import connect, default_uri, write_report  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse, write the report, and turn every error into one line and an exit code."""
    apply_process_settings("report")
    return run_command("report", lambda: _report(build_parser().parse_args(argv)))


def build_parser() -> OneLineParser:
    """The command-line flags."""
    parser = OneLineParser("report", description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", help="MLflow experiment (default: that of the latest search)")
    parser.add_argument("--search-id", help="search to report on (default: the latest search)")
    parser.add_argument(
        "--tracking-uri", default=None, help=f"default: MLFLOW_TRACKING_URI, else {DEFAULT_TRACKING_URI}"
    )
    parser.add_argument("--out", type=Path, help="folder for the report files (default: reports/<search_id>/)")
    parser.add_argument("--model-name", help="model whose champion to show (default: <experiment>_best_model)")
    parser.add_argument("--no-log-to-run", action="store_true", help="do not log the files to the parent run")
    return parser


def _report(args) -> int:
    uri = args.tracking_uri or default_uri()
    check_tracking_uri_form(uri, creates=False)
    if args.out is not None:
        check_writable(args.out, "--out")
    connect(uri)  # before the slow imports: a dead server is one line within seconds
    path = write_report(uri, args.experiment, args.search_id, args.out,
                        model_name=args.model_name, log_to_run=not args.no_log_to_run)  # fmt: skip
    print(f"report written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
