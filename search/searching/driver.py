"""The search itself: check the settings against the data, start the parent run, fit the Tuner, record the end."""

from __future__ import annotations

import functools
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from search.common import contract as c
from search.common.cli import check_writable
from search.common.compat import patch_tune
from search.common.connect import LOGIN_ON_HOST, check_tracking_uri, connect_ray, disconnect_ray, public_uri, served
from search.common.errors import Interrupted, Unreachable, UsageError
from search.common.lookup import find_search, search_trials
from search.common.settings import apply_process_settings
from search.common.trials import Trial, number, rank_trials
from search.searching.config import SearchConfig
from trainables import fidelity
from trainables.columnar import no_rows, return_freed_memory
from trainables.data import PROJECT_ROOT, Dataset, Split, load_dataset, split_dataset
from trainables.folds import RunFolds
from trainables.task import AUTO

if TYPE_CHECKING:
    from search.searching.parent_run import SearchHome


@dataclass
class SearchOutcome:
    """What a finished search left behind."""

    search_id: str
    experiment: str
    experiment_id: str
    parent_run_id: str
    ranked: list[Trial]
    failed: int
    stopped: int
    dashboard_url: str | None = None  # the Ray dashboard of a cluster that outlives the search
    stop_reason: str = c.NUM_SAMPLES  # every trial asked for ran, or `--plateau` or `--time-budget` ended it
    notes: list[str] = field(default_factory=list)  # one line each: the warm start, why the search stopped
    nodes: int = 0  # the Ray nodes its trials ran on
    metric: str = c.VAL_ACCURACY  # what the search ranked by


def prepare(config: SearchConfig) -> tuple[Dataset, Split, list[str]]:
    """Load and split the data, choose the metric, families and feature sets that fit it (set on `config`) and check
    the settings against it, before anything starts; the lines to say about it."""
    data = load_dataset(config.dataset, config.target, config.categorical, config.drop, config.task)
    config.task, config.task_reason = data.task, data.task_reason
    split = split_dataset(data, config.test_size, config.seed)
    # The parts hold the rows from now on: the whole table's features, a copy more on the driver, go (columns stay).
    data = replace(data, X=no_rows(data.X))
    return_freed_memory()
    regression = data.task == c.REGRESSION
    notes = list(data.notes) + validation(config, split, data.name, regression)
    if regression or pd.api.types.is_numeric_dtype(data.y):  # a number: say how it was read
        notes.append(f"task {data.task}: {data.task_reason}")
    if config.metric is None:
        config.metric, config.metric_reason = choose_metric(split.y_dev, data.task)
        notes.append(f"metric {config.metric}: {config.metric_reason}")
    elif c.task_of_metric(config.metric) != data.task:
        raise UsageError(
            f"--metric {config.metric} scores {c.task_of_metric(config.metric)}, and this search is {data.task} "
            f"({data.task_reason}): use one of {', '.join(c.task_metrics(data.task))}, or set --task"
        )
    notes += fit_space(config, data)
    check_writable(Path(config.storage_path or "ray_results"), "--storage-path")  # the last check: it makes the folder
    return data, split, notes


def validation(config: SearchConfig, split: Split, name: str, regression: bool) -> list[str]:
    """Set the folds and scheduler left to the table (trainables/fidelity.py) and check the folds against the
    development part; a line for what a big table changes."""
    rows = len(split.y_dev)
    given = config.cv_folds is not None
    config.cv_folds = config.cv_folds if given else fidelity.folds_for(rows)
    config.scheduler = fidelity.scheduler_for(rows) if config.scheduler == AUTO else config.scheduler
    smallest = rows if regression else int(split.y_dev.value_counts().min())
    if max(config.cv_folds, 2) > smallest:  # a stratified holdout needs two rows of each class too
        shown = "rows" if regression else "rows of the smallest class"
        raise UsageError(
            f"--cv-folds {config.cv_folds} needs more than the {smallest} {shown} in the development part of "
            f"{name}: lower --cv-folds"
        )
    notes = [] if given or config.cv_folds > 1 else [f"validation: one holdout split of {fidelity.HOLDOUT_SHARE:.0%} "
                                                    f"({rows:,} rows; --cv-folds sets folds)"]  # fmt: skip
    shares = fidelity.rungs(rows, config.cv_folds) if config.scheduler == "asha" else []
    if shares:
        notes.append(f"row samples: each configuration is scored on {', '.join(f'1/{round(1 / s)}' for s in shares)} "
                     "of the rows first, and only the promising ones fit every row (asha)")  # fmt: skip
    return notes


def choose_metric(y, task: str = c.CLASSIFICATION) -> tuple[str, str]:
    """The default metric for this target, and why: RMSE for a number; for labels, balanced accuracy when the
    smallest class is `IMBALANCE` times rarer than the largest or more, accuracy otherwise."""
    if task == c.REGRESSION:
        return c.VAL_RMSE, "a number to predict: root mean squared error, in the target's units"
    counts = y.value_counts()
    ratio = counts.max() / counts.min()
    shape = f"the largest class has {ratio:.1f}x the rows of the smallest ({counts.idxmin()!r}, {counts.min()} rows)"
    if ratio >= c.IMBALANCE:
        return c.VAL_BALANCED_ACCURACY, f"{shape}; accuracy would reward ignoring it"
    return c.VAL_ACCURACY, f"{shape}: about even"


def fit_space(config: SearchConfig, data: Dataset) -> list[str]:
    """Leave out the families and feature sets that make no sense for this table or metric, a line for each."""
    from search.searching.config import check_points, models_for
    from trainables.columns import NUMERIC

    notes = [note] if (note := models_for(config, data.task)) else []
    check_points(config, data.task)
    if config.metric == c.VAL_LOG_LOSS and "svm" in config.models and len(config.models) > 1:
        config.models = [m for m in config.models if m != "svm"]
        notes.append("svm left out: it gives no probabilities, so no log loss")
    if not data.roles.names(NUMERIC) and config.feature_sets != ["basic"]:
        dropped = [f for f in config.feature_sets if f != "basic"]
        config.feature_sets = ["basic"]
        notes.append(f"feature sets {','.join(dropped)} left out: the table has no numeric column to transform")
    if config.metric == c.VAL_LOG_LOSS and config.models == ["svm"]:
        raise UsageError("--metric val_log_loss needs probabilities, which svm does not give: choose other --models")
    return notes


def run_search(config: SearchConfig, started: float | None = None) -> SearchOutcome:
    """Run (or, with `config.resume`, resume) one search; raises UsageError or Unreachable. `started`: the
    `time.monotonic()` reading `--time-budget` counts from (the command's start; default now)."""
    from mlflow.tracking import MlflowClient

    from search.common.lineage import lineage_tags
    from search.searching.elastic import cluster_cpus
    from search.searching.parent_run import reopen_search, start_search
    from search.searching.resume import resumed_config
    from search.searching.tuning import store_rows
    from search.searching.warm import plan

    started = time.monotonic() if started is None else started
    apply_process_settings("run")  # a no-op after `search/run.py` made them; benchmarks call this directly
    patch_tune()  # the project's only patches of Ray's internals (search/common/compat.py), once per process
    check_tracking_uri(config.tracking_uri)
    parent = None
    if config.resume:
        parent = find_search(MlflowClient(config.tracking_uri), config.resume)
        ended = parent.data.tags.get(c.STOP_REASON)
        if ended in (c.PLATEAU, c.TIME_BUDGET):
            flag = f"--{ended.replace('_', '-')}"
            raise UsageError(
                f"search {config.resume} ended on its {flag}: it is complete, not interrupted; start a new search "
                "(it warm-starts from this one)"
            )
        config = resumed_config(parent, config)
    data, split, notes = prepare(config)
    if parent is not None and parent.data.tags.get(c.DATASET_DIGEST) != data.digest:
        raise UsageError(
            f"dataset {config.dataset} has changed since search {config.resume} started "
            f"({data.digest[:19]}… now, {parent.data.tags.get(c.DATASET_DIGEST, '?')[:19]}… then): it cannot resume"
        )
    if served(config.tracking_uri):  # logins refused here, before Ray starts
        MlflowClient(config.tracking_uri).search_experiments(max_results=1)
    context = connect_ray(config.address, PROJECT_ROOT)
    started_ray = context is not None and config.address in (None, "", "local")
    dashboard = getattr(context, "dashboard_url", None)
    dashboard = dashboard if not dashboard or "://" in dashboard else f"http://{dashboard}"
    try:
        client = MlflowClient(config.tracking_uri)
        lineage = {**lineage_tags(PROJECT_ROOT), c.DATASET: data.name, c.DATASET_DIGEST: data.digest}
        warm, max_concurrent = None, None
        if parent is None:
            max_concurrent = config.max_concurrent or max(1, cluster_cpus())
            warm = plan(client, config, data, config.experiment or c.experiment_name(data.name, data.task))
            tags = {**warm.tags(), c.METRIC_REASON: config.metric_reason, c.TASK_REASON: config.task_reason}
            home = start_search(client, config, data, split, lineage, max_concurrent, tags)
        else:
            home = reopen_search(client, parent)
        try:
            verb = "resuming" if parent else "search"
            on_ray = f", Ray dashboard {dashboard}" if dashboard else ""
            print(f"{verb} {home.search_id}: experiment {home.experiment!r}, parent run {home.parent_run_id}, "
                  f"tracking {public_uri(config.tracking_uri)}{on_ray}")  # fmt: skip
            if not data.roles.plain:  # a table of clean numbers needs no word
                print(f"columns of {data.name} ({len(data.y)} rows):\n{data.roles.table()}")
            for note in notes:
                print(note)
            if warm is not None and warm.note():
                print(warm.note())
            split = store_rows(split)  # the trials read the object store's copy of the rows; the driver's goes
            return_freed_memory()
            make_tuner = tuner_maker(config, client, home, data, split, lineage, warm, started, max_concurrent)
            outcome = _run(config, client, home, make_tuner, data.classes)
        except (Interrupted, KeyboardInterrupt) as cut:
            if parent is None and nothing_ran(client, home):
                raise abandon(client, home) from None
            if isinstance(cut, KeyboardInterrupt):  # before `_run` closed the parent: a resumed search, as it was
                client.set_terminated(home.parent_run_id, status="KILLED")
            raise interrupted(home.search_id, config.tracking_uri) from None  # the command with where it is tracked
        outcome.notes.insert(0, warm.note() if warm is not None else "")
        outcome.dashboard_url = None if started_ray else dashboard  # an embedded Ray's ends with the search
        return outcome
    finally:
        if context is not None:
            disconnect_ray()


def tuner_maker(config: SearchConfig, client, home: SearchHome, data: Dataset, split: Split, lineage: dict,
                warm, started: float, max_concurrent: int | None):  # fmt: skip
    """How `_run` gets its Tuner and tracker: a new one, or for a resumed search (no `warm`) the one Tune restores."""
    from search.searching.tracking import TrialTracker
    from search.searching.tuning import build_tuner

    # Workers that do not see the Tune folder keep their folds in their trial runs, on a server they reach.
    runs = RunFolds(config.tracking_uri, home.experiment_id, home.search_id) if served(config.tracking_uri) else None
    if warm is None:
        return functools.partial(_restore, config, client, home, split, runs)
    trial_tags = {k: lineage[k] for k in c.LINEAGE_TAGS} | {c.SEARCH_ID: home.search_id}
    stopper = ending(config, started)
    tracker = TrialTracker(config.tracking_uri, home.experiment_id, home.parent_run_id, trial_tags, stopper)
    build = functools.partial(
        build_tuner, config, split, home.tune_path, max_concurrent, [tracker], warm, stopper, runs=runs
    )
    return lambda: (build(), tracker)


def ending(config: SearchConfig, started: float):
    """What can end the search before its last trial (`--plateau`, `--time-budget` from `started`), or None."""
    from search.searching.plateau import Plateau
    from search.searching.time_budget import Ending, TimeBudget
    from search.searching.tuning import first_objective

    budget = TimeBudget(config.time_budget, started) if config.time_budget else None
    first = first_objective(config)
    plateau = (
        Plateau(first.name, config.plateau, config.min_delta, config.cv_folds, first.mode) if config.plateau else None
    )
    return Ending(plateau, budget) if plateau or budget else None


def _restore(config: SearchConfig, client, home: SearchHome, split: Split, runs: RunFolds | None):
    """The interrupted search's Tuner and restored tracker, its `--plateau` count going on from where it was cut."""
    from search.searching.tracking import restored_tracker
    from search.searching.tuning import restore_tuner

    tuner = restore_tuner(config, split, home.tune_path, runs)
    tracker = restored_tracker(home.parent_run_id)
    tracker.tracking_uri = config.tracking_uri
    if tracker.stopper is not None:
        tracker.stopper.replay(search_trials(client, home.experiment_id, home.search_id))
    return tuner, tracker


def _run(config: SearchConfig, client, home: SearchHome, make_tuner, classes: list) -> SearchOutcome:
    """Build and fit the Tuner, then record the outcome on the parent run, which is closed whatever happens. A search
    its stopper ended is complete: the trials it cut in flight count as stopped."""
    from search.searching.closing import draw_figures, mark_front, trials_of
    from search.searching.elastic import nodes_used
    from search.searching.parent_run import finish_parent_run

    status, tracker = "FAILED", None
    try:
        try:
            tuner, tracker = make_tuner()
            results = tuner.fit()
        except Exception:
            if tracker is not None and tracker.lost:
                raise tracking_lost(config.tracking_uri, home.search_id) from None
            raise
        tracker.record_missing(results)
        if tracker.lost:
            raise tracking_lost(config.tracking_uri, home.search_id)
        stopper = tracker.stopper
        early = stopper is not None and stopper.fired and len(results) < config.num_samples
        rows = trials_of(results, tracker.trials, ended=early)  # those in flight when the search's end came: stopped
        if (len(rows) < config.num_samples and not early) or any(r.outcome == c.UNFINISHED for r in rows):
            status = "KILLED"  # Tune caught Ctrl-C, saved its state and returned early
            raise interrupted(home.search_id)
        ranked = rank_trials(rows, config.metric)
        draw_figures(client, results, rows, config.metric, classes)
        if config.objectives:
            mark_front(client, home.search_id, home.parent_run_id, config.objectives, rows)
        failed = sum(r.outcome == c.FAILED for r in rows)
        stopped = sum(r.outcome == c.STOPPED for r in rows)
        counts = {c.TRIALS_FINISHED: len(rows) - failed - stopped, c.TRIALS_STOPPED: stopped, c.TRIALS_FAILED: failed}
        counts[c.NODES_USED] = nodes_used(rows)
        reason = stopper.code if early else c.NUM_SAMPLES
        finish_parent_run(client, home.parent_run_id, ranked, counts, reason)
        status = "FINISHED" if ranked else "FAILED"
        said = f"ended early: {stopper.reason()}" if early else f"ended: all {len(rows)} trials ran"
        ids = (home.search_id, home.experiment, home.experiment_id, home.parent_run_id)
        return SearchOutcome(
            *ids, ranked, failed, stopped, stop_reason=reason, notes=[said], nodes=counts[c.NODES_USED],
            metric=config.metric,
        )  # fmt: skip
    except KeyboardInterrupt:  # a Ctrl-C that Tune did not catch itself
        status = "KILLED"
        raise interrupted(home.search_id) from None
    finally:
        if tracker is not None:
            tracker.close()
        if tracker is None or not tracker.lost:  # with the server gone, the parent stays RUNNING until --resume
            client.set_terminated(home.parent_run_id, status=status)


def tracking_lost(uri: str, search_id: str) -> Unreachable:
    """The tracking server went away mid-search and did not come back in time."""
    return Unreachable(
        f"MLflow tracking server {public_uri(uri)} stopped answering, so search {search_id} stopped; Tune kept "
        f"every result: start the server again and run {resume_command(search_id, uri)}"
    )


def abandon(client, home: SearchHome) -> Interrupted:
    """Delete what a search cut before its first trial left (parent run, Tune folder); the line to say."""
    import shutil

    client.delete_run(home.parent_run_id)
    shutil.rmtree(home.tune_path, ignore_errors=True)
    return Interrupted(f"search {home.search_id} was interrupted before its first trial: nothing ran and nothing is "
                       "left of it; run the search again")  # fmt: skip


def nothing_ran(client, home: SearchHome) -> bool:
    """Cut before Tune saved a trial, and no trial run opened: nothing for `--resume` to continue."""
    from search.searching.tuning import saved_trials

    return not saved_trials(home.tune_path) and not search_trials(client, home.experiment_id, home.search_id)


def interrupted(search_id: str, tracking_uri: str | None = None) -> Interrupted:
    """The search stopped before its last trial; `--resume <search_id>` continues it."""
    return Interrupted(
        f"search {search_id} was interrupted: continue it with {resume_command(search_id, tracking_uri)}"
    )


def resume_command(search_id: str, tracking_uri: str | None = None) -> str:
    """The command that continues a search, as the closing lines print commands."""
    return f"{commands_dir()}python search/run.py --resume {search_id}{_uri_flag(tracking_uri)}"


def _uri_flag(tracking_uri: str | None) -> str:
    """`--tracking-uri` for a URI other than the default."""
    return "" if tracking_uri in (None, SearchConfig().tracking_uri) else f" --tracking-uri {public_uri(tracking_uri)}"


def print_summary(outcome: SearchOutcome, top: int = 5) -> None:
    """The best trials as a table, and the search id to release or report."""
    from search.common.runs_table import text_table

    print(f"\nbest trials of search {outcome.search_id} ({trial_counts(outcome)}):")
    second = c.partner_of(outcome.metric)
    head = [c.TRIAL_INDEX, c.MODEL, c.FEATURE_SET, outcome.metric, second, c.FIT_TIME_S, "run_id"]
    rows = [
        [
            str(t[c.TRIAL_INDEX]),
            t[c.MODEL],
            t[c.FEATURE_SET],
            *(f"{number(t.get(k)):.4f}" for k in head[3:5]),
            f"{t[c.FIT_TIME_S]:.3f}",
            t["run_id"],
        ]  # fmt: skip
        for t in outcome.ranked[:top]
    ]
    print(text_table(head, rows, right=[True, False, False, True, True, True, False]))
    for note in filter(None, outcome.notes):
        print(note)
    print(f"\nsearch_id: {outcome.search_id}")


def trial_counts(outcome: SearchOutcome) -> str:
    """`28 completed, 2 stopped early, on 3 nodes`: the counts of how the trials ended, the empty ones left out."""
    counts = [f"{len(outcome.ranked)} completed"]
    counts += [f"{outcome.stopped} stopped early"] if outcome.stopped else []
    counts += [f"{outcome.failed} failed"] if outcome.failed else []
    counts += [f"on {outcome.nodes} node{'s' * (outcome.nodes != 1)}"] if outcome.nodes else []
    return ", ".join(counts)


def commands_dir(executable: str | None = None, cwd: Path | None = None) -> str:
    """Where the running interpreter's commands are, as a user pastes them here: `.venv/bin/` for a virtual
    environment under the working folder, nothing (the PATH's) otherwise."""
    folder = Path(executable or sys.executable).parent
    try:
        return f"{folder.relative_to(cwd or Path.cwd())}/" if (folder.parent / "pyvenv.cfg").is_file() else ""
    except ValueError:
        return ""


STUDY_DASHBOARD_SERVICE = "docker compose --profile dashboard run --rm --service-ports study-dashboard"


def print_next_steps(outcome: SearchOutcome, tracking_uri: str, storage_path: str | None = None) -> None:
    """How to look at the search, release its best trial and report it, with the interpreter that ran it.

    In containers, compose sets `MLFLOW_UI_URL`, `RAY_DASHBOARD_URL` and `STUDY_DASHBOARD_URL` to what a browser on
    the host opens; the release and the report are then host commands (the clone to tag is there)."""
    host = os.environ.get("MLFLOW_UI_URL")
    where = f" --tracking-uri {host.rstrip('/')}" if host else _uri_flag(tracking_uri)
    page = f"#/experiments/{outcome.experiment_id}/runs"
    ui = host or (public_uri(tracking_uri) if served(tracking_uri) else "")
    bin_ = "" if host else commands_dir()
    py = f"{bin_}python"
    if ui:
        print(f"look:    {ui.rstrip('/')}/{page}")
    else:
        print(
            f"look:    {bin_}mlflow ui --backend-store-uri {tracking_uri} --host 127.0.0.1, then http://127.0.0.1:5000/{page}"
        )
    if outcome.dashboard_url:
        print(f"ray:     {os.environ.get('RAY_DASHBOARD_URL') or outcome.dashboard_url}")
    if dashboard := os.environ.get("STUDY_DASHBOARD_URL"):
        print(f"study:   {STUDY_DASHBOARD_SERVICE} --search-id {outcome.search_id}, then {dashboard}")
    else:
        storage = f" --storage-path {storage_path}" if storage_path else ""
        print(f"study:   {py} cluster/study_dashboard.py --search-id {outcome.search_id}{storage}")
    if host:
        print(f"login:   {LOGIN_ON_HOST}   # on the host, in your clone")
    print(f"release: {py} search/release.py --search-id {outcome.search_id}{where}")
    print(f"report:  {py} search/report.py --search-id {outcome.search_id}{where}")
