"""The Tune side of a search: the Tuner with OptunaSearch over the conditional space."""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna.storages import JournalStorage
from ray import tune
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from search.common import contract as c
from search.common.contract import STUDY_JOURNAL
from search.common.contract import trial_run_name as run_name
from search.common.errors import UsageError
from search.common.pareto import Objective, parse_objectives, searcher_args
from search.searching.config import SearchConfig
from search.searching.elastic import SearchLimiter
from search.searching.journal import DriverJournal
from search.searching.progress import ProgressLine
from trainables import fidelity
from trainables.columnar import Columns, no_rows
from trainables.data import Split
from trainables.folds import RunFolds
from trainables.space import SearchSpace
from trainables.trainable import train_trial

if TYPE_CHECKING:
    from search.searching.warm import WarmStart

MAX_FAILURES = 7  # attempts a trial may lose with its actor before it fails (its own error ends it at once)


def trial_name(trial) -> str:
    """Names trials `0007-svm-basic`: the order in which the searcher proposed them, then what they try."""
    return run_name(trial.config)


def trial_dirname(trial) -> str:
    """A short folder name per trial (Tune's default spells out every hyperparameter)."""
    return trial.trial_id


def first_objective(config: SearchConfig) -> Objective:
    """What decides the search's progress line, plateau and ASHA: `--metric`, or the first of `--objectives`."""
    return (
        parse_objectives(config.objectives)[0]
        if config.objectives
        else Objective(config.metric, c.mode_of(config.metric))
    )


def progress_display(config: SearchConfig, ending=None) -> tuple[list, dict]:
    """The project's progress line (a callback), or with `--verbose` Tune's table; as (callbacks, RunConfig args)."""
    if not config.verbose:
        first = first_objective(config)
        return [ProgressLine(config.num_samples, first.name, first.mode, ending)], {"verbose": 0}
    reporter = tune.CLIReporter(
        parameter_columns=[c.MODEL, c.FEATURE_SET],
        metric_columns=[config.metric, c.partner_of(config.metric), c.FIT_TIME_S],
        metric=config.metric,
        mode=c.mode_of(config.metric),
        sort_by_metric=not (config.plateau or config.time_budget),  # Tune's sort fails on a trial cut unreported
        max_progress_rows=8,
        max_report_frequency=15,
        print_intermediate_tables=True,  # its default follows whatever verbosity Tune's last run in the process left
    )
    return [], {"verbose": 1, "progress_reporter": reporter}


def trial_data(split: Split) -> dict[str, Columns]:
    """The development part as arrays a trial reads from the object store without copying (trainables/columnar.py)."""
    X = split.stored if split.stored is not None else Columns.of(split.X_dev)
    return {"X": X, "y": Columns.of(split.y_dev)}


def store_rows(split: Split) -> Split:
    """The split with its development part's features put in the object store, where the trials read them, and the
    driver's own copy of both parts' features let go: the driver holds no copy of the table during the search."""
    import ray

    stored = ray.put(Columns.of(split.X_dev))
    return replace(split, X_dev=no_rows(split.X_dev), X_test=no_rows(split.X_test), stored=stored)


def sample_rungs(config: SearchConfig, split: Split) -> list[float]:
    """The row samples each configuration is scored on before its folds: with ASHA only, which cuts on them."""
    return fidelity.rungs(len(split.y_dev), config.cv_folds) if config.scheduler == "asha" else []


def make_trainable(config: SearchConfig, split: Split, tune_path: Path, runs: RunFolds | None = None):
    """The trainable with the development part in the object store once, one CPU a trial; its finished folds kept
    beside the study journal, or in the trial's run (`runs`) on a node that does not see it (trainables/folds.py)."""
    asha, journal = config.scheduler == "asha", str(tune_path / STUDY_JOURNAL)
    trainable = tune.with_parameters(
        train_trial, **trial_data(split), report_folds=asha, storage=journal, runs=runs, roles=split.roles,
        rungs=tuple(sample_rungs(config, split)),
    )  # fmt: skip
    return tune.with_resources(trainable, {"cpu": 1})


def name_objectives(storage, study_name: str, objectives: list[Objective]) -> optuna.Study:
    """Create the study with its objectives named after their metrics, which optuna-dashboard and Optuna's plots
    show instead of "Objective 0"; OptunaSearch then loads it (it creates its study with `load_if_exists`)."""
    directions = ["maximize" if o.mode == "max" else "minimize" for o in objectives]
    study = optuna.create_study(storage=storage, study_name=study_name, directions=directions, load_if_exists=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names([o.name for o in objectives])
    return study


def build_tuner(
    config: SearchConfig,
    split: Split,
    tune_path: Path,
    max_concurrent: int,
    callbacks: list,
    warm: WarmStart | None = None,
    stopper: Stopper | None = None,
    runs: RunFolds | None = None,
) -> tune.Tuner:
    """A Tuner whose trials cross-validate Pipelines on the development part. `warm`: earlier trials for the study
    and configurations to run first (warm.py); `stopper`: what ends the search early."""
    space = SearchSpace(config.models, config.feature_sets, config.seed, config.cv_folds, config.task, split.roles.text)
    tune_path.mkdir(parents=True, exist_ok=True)
    # An append-only journal beside Tune's state: resumable, and cheaper on the driver than SQLite (BENCHMARKS.md).
    study = JournalStorage(DriverJournal(str(tune_path / STUDY_JOURNAL)))
    points = [space.point(p) for p in config.points_to_evaluate or []] + (warm.points if warm else [])
    if config.defaults_first and not (warm and warm.trials) and not points:  # a search that knows nothing yet
        points = space.defaults()
    # OptunaSearch enqueues every point at once: those beyond the search's trials would wait in the study forever.
    points = points[: config.num_samples]
    objectives = parse_objectives(config.objectives) if config.objectives else None
    first = first_objective(config)
    # One objective: OptunaSearch's own TPE, seeded. Several: metric and mode as lists, on the searcher.
    goal = searcher_args(objectives, config.seed) if objectives else {c.METRIC: first.name, "mode": first.mode}
    known = name_objectives(study, tune_path.name, objectives or [first])
    if warm and warm.trials and not known.trials:  # not twice: a study that has trials already had them added
        known.add_trials(warm.trials)
        space.first_number = len(warm.trials)  # this search's own trials are numbered from 0
    searcher = OptunaSearch(
        space=space,
        **goal,
        seed=None if objectives else config.seed,
        storage=study,
        study_name=tune_path.name,
        points_to_evaluate=points or None,
    )
    scheduler = None
    if config.scheduler == "asha":  # ASHA stops trials on the first objective
        scheduler = ASHAScheduler(
            time_attr=c.FOLDS_DONE,  # not Tune's iteration count, which restarts when folds come back from a run
            metric=first.name,
            mode=first.mode,
            max_t=config.cv_folds,
            grace_period=min(sample_rungs(config, split), default=1),  # rungs at each sample, then at folds 1, 4
            reduction_factor=fidelity.RUNG_FACTOR,
        )
    shown, display = progress_display(config, stopper)
    limiter = SearchLimiter(searcher, max_concurrent, follow=not config.max_concurrent)
    callbacks = [*shown, *callbacks]
    return tune.Tuner(
        make_trainable(config, split, tune_path, runs),
        tune_config=tune.TuneConfig(
            search_alg=limiter,
            scheduler=scheduler,
            num_samples=config.num_samples,
            reuse_actors=True,
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_dirname,
        ),
        run_config=tune.RunConfig(
            name=tune_path.name,
            storage_path=str(tune_path.parent),
            callbacks=callbacks,
            stop=stopper,
            # Every fold checkpoint is kept: `num_to_keep` would snapshot the whole experiment's state at each one.
            failure_config=tune.FailureConfig(max_failures=MAX_FAILURES),
            **display,
        ),
    )


def restore_tuner(config: SearchConfig, split: Split, tune_path: Path, runs: RunFolds | None = None) -> tune.Tuner:
    """The interrupted search's Tuner: finished trials are kept, unfinished ones run again, failed ones stay failed;
    Tune restores its callbacks and stopper, this run gives the trainable."""
    if not tune.Tuner.can_restore(str(tune_path)):
        raise UsageError(f"no Tune state at {tune_path}: resume from the machine and --storage-path it ran with")
    if not saved_trials(tune_path):
        raise UsageError(f"search {tune_path.name.removeprefix('search-')} was cut before its first trial: there is "
                         "nothing to resume; run the search again")  # fmt: skip
    return tune.Tuner.restore(str(tune_path), make_trainable(config, split, tune_path, runs), resume_unfinished=True)


def saved_trials(tune_path: Path) -> int:
    """The trials of the Tune state saved in `tune_path` (0 when there is none). A state saved before the first
    trial (Ctrl-C as Tune set up) cannot be resumed: Ray 2.60 fails to restore it and starts the experiment over,
    with one trial where the search asked for its number (TuneController._restore_trials reads the first trial)."""
    if not tune.Tuner.can_restore(str(tune_path)):
        return 0
    return len(tune.ExperimentAnalysis(str(tune_path)).trials)
