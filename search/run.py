"""Run a hyperparameter search: model family x feature set x hyperparameters, on Ray Tune with OptunaSearch,
every trial tracked in MLflow as a child run of the search's parent run.

    python search/run.py                               # Iris, local Ray, sqlite:///mlflow.db
    python search/run.py --dataset digits --num-samples 100 --models svm,mlp
    RAY_ADDRESS=... MLFLOW_TRACKING_URI=http://127.0.0.1:5000 python search/run.py

Exit codes: 0 done, 1 no trial finished, 2 bad input or a server that does not answer, 130 interrupted
(`--resume SEARCH_ID` continues).
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search.searching.config import SearchConfig

# What Ctrl-C before the search's parent run existed leaves: nothing (later, the search says what it left).
NOT_STARTED = "interrupted before the search started: nothing was made; run the same command again"

try:  # Ctrl-C in Python's first tenths of a second lands here: the same line, not a traceback
    from pathlib import Path

    if __package__ in (None, ""):  # run as a script: the project's root on the path, as for every entrypoint
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    from search.common.errors import Interrupted, NothingToDo, run_command
    from search.common.settings import apply_process_settings
except KeyboardInterrupt:
    print(f"run: {NOT_STARTED}", file=sys.stderr)
    sys.exit(130)


def main(argv: list[str] | None = None) -> int:
    """Parse, search, and turn every error into one line and an exit code."""
    started = time.monotonic()  # --time-budget counts from here: the imports of scikit-learn, MLflow and Ray included
    apply_process_settings("run")
    return run_command("run", lambda: _search(argv, started))


def _search(argv: list[str] | None, started: float) -> int:
    try:  # the imports too: scikit-learn, pandas and MLflow take seconds, where Ctrl-C often lands
        from search.searching.config import parse_args
        from search.searching.driver import print_next_steps, print_summary, run_search

        config = parse_args(argv)
        outcome = run_search(config, started)
    except KeyboardInterrupt:
        raise Interrupted(NOT_STARTED) from None
    print_summary(outcome)
    if not outcome.ranked:
        raise NothingToDo(nothing_completed(outcome, config))
    if config.report:  # the report's own command line, with its own one-line errors
        from search import report

        where = ["--tracking-uri", config.tracking_uri, "--experiment", outcome.experiment]
        return report.main([*where, "--search-id", outcome.search_id])
    print_next_steps(outcome, config.tracking_uri, config.storage_path)
    return 0


def nothing_completed(outcome, config: SearchConfig) -> str:
    """Why no trial completed, and what to do: the budget ended first, or every trial failed or stopped early."""
    from search.common.contract import TIME_BUDGET

    if outcome.stop_reason == TIME_BUDGET and not outcome.failed:
        ran = "its fit on every row" if config.cv_folds == 1 else f"all its {config.cv_folds} folds"
        return (
            f"--time-budget {config.time_budget} ended before any trial ran {ran} ({outcome.stopped} cut short): "
            "give the search more time, or lower --cv-folds"
        )
    if outcome.failed:
        return f"no trial finished: {outcome.failed} failed; see the failed trials' `error` tag in MLflow"
    return f"no trial completed: all {outcome.stopped} were stopped early; run more trials or use --scheduler fifo"


if __name__ == "__main__":
    sys.exit(main())
