"""One source for every name the search writes to MLflow and the release, the report, benchmarks and tests read.

docs/tracking.md describes these names; `tests/unit/test_contract.py` checks that it names every one of them.
"""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from search.common.connect import public_uri
from search.common.errors import NotFound, NothingToDo

# Experiments, registered models, aliases and git tags: one rule for every dataset.
ALIAS = "champion"
PREVIOUS_ALIAS = "previous"
# A registered version's tag `promotion`: what the release's alias gate decided for it.
PROMOTED, KEPT, FORCED, OVER_BUDGET, HOLDS = "promoted", "kept", "forced", "over_budget", "holds"
PROMOTION_VERDICTS = (PROMOTED, KEPT, FORCED, OVER_BUDGET)  # HOLDS is said, never recorded


def experiment_name(dataset: str) -> str:
    """`<dataset>_classification` (Iris: `iris_classification`)."""
    return f"{dataset}_classification"


def model_name(experiment: str) -> str:
    """The registered model of an experiment: `<experiment>_best_model` (`iris_classification_best_model`)."""
    return f"{experiment}_best_model"


def git_tag_name(model: str, version: int | str) -> str:
    """The annotated git tag of a release: `<model>-v<N>`, so two models never share one."""
    return f"{model}-v{version}"


# Run types (tag `run_type`) and the tags that tie runs together.
RUN_TYPE = "run_type"
SEARCH_RUN, TRIAL_RUN, RELEASE_RUN = "search", "trial", "release"
SEARCH_ID = "search_id"
PARENT_RUN_ID = "mlflow.parentRunId"
TRIAL_ID = "trial_id"
TRIAL_INDEX = "trial_index"
OUTCOME = "outcome"
PARETO_FRONT = "pareto_front"  # `true` on the Pareto-optimal trials of a search with several --objectives
CONFUSION_MATRIX = "confusion_matrix"  # tag: the out-of-fold confusion matrix as JSON rows (true class by row)
CONFUSION_MATRIX_PNG = "confusion_matrix.png"  # artifact: its figure, on the best trial of each model family
GIT_COMMIT, GIT_DIRTY, CODE_DIGEST = "git_commit", "git_dirty", "code_digest"  # the code that ran (lineage.py)
LINEAGE_TAGS = (GIT_COMMIT, GIT_DIRTY, CODE_DIGEST, "dataset", "dataset_digest")  # on every trial run, from the search
NODE_TAGS = ("node", "hostname")  # where a trial ran, from its result

# Trial outcomes (tag `outcome`), one word each, everywhere.
COMPLETED, STOPPED, FAILED = "completed", "stopped", "failed"
OUTCOMES = (COMPLETED, STOPPED, FAILED)
# What the report calls a trial run that has no outcome yet: still RUNNING, or closed without any score.
UNFINISHED, NO_RESULT = "unfinished", "no_result"

# Trial metrics: scores (cross-validated on the development part), then serving cost, then bookkeeping.
SCORES = ("val_accuracy", "val_f1", "train_accuracy", "train_f1", "fit_time_s")
COSTS = ("predict_ms", "model_bytes")
TRIAL_METRICS = (*SCORES, *COSTS, "folds_done")
MINIMISED = ("fit_time_s", *COSTS)  # lower is better; every other metric is a score, higher is better
RANK_METRICS = ("val_accuracy", "val_f1")  # what --metric may be

# Trial params besides the model's own hyperparameters.
TRIAL_CONSTANTS = ("seed", "cv_folds")

# The search's parent run.
SEARCH_PARAMS = (
    "dataset",
    "target",
    "models",
    "feature_sets",
    "num_samples",
    "max_concurrent",
    "seed",
    "cv_folds",
    "test_size",
    "split_seed",
    "metric",
    "scheduler",
    "objectives",
    "points_to_evaluate",
    "n_dev_rows",
    "n_test_rows",
)
SEARCH_METRICS = ("best_val_accuracy", "best_val_f1", "trials_finished", "trials_stopped", "trials_failed")


def search_run_name(search_id: str) -> str:
    """The parent run's name: `search-<search_id>`."""
    return f"search-{search_id}"


def trial_run_name(config: dict) -> str:
    """A trial's name, in Tune and in MLflow: `0007-svm-basic` (the order the searcher proposed it, what it tries)."""
    return f"{int(config.get('trial_index', 0)):04d}-{config.get('model')}-{config.get('feature_set')}"


def find_search(
    client: MlflowClient, search_id: str | None = None, experiment: str | None = None, finished: bool = False
) -> Run:
    """The parent run of a search: by `search_id`, or the latest one (`finished`: the latest FINISHED one).

    `experiment` (a name or an id) limits the look to one experiment; without it every experiment of the
    tracking store is searched, so the latest search is found whatever its dataset. Raises NotFound for a
    named search or experiment that is not there, NothingToDo when there is no search at all.
    """
    experiments = _experiment_ids(client, experiment)
    query = f"tags.{RUN_TYPE} = '{SEARCH_RUN}'"
    if search_id:
        query += f" and tags.{SEARCH_ID} = '{search_id}'"
    elif finished:
        query += " and attributes.status = 'FINISHED'"
    runs = client.search_runs(experiments, query, order_by=["attributes.start_time DESC"], max_results=1)
    if runs:
        return runs[0]
    where = f"experiment {experiment!r}" if experiment else f"any experiment at {public_uri(client.tracking_uri)}"
    if search_id:
        raise NotFound(f"no search {search_id!r} in {where}: check the id, --experiment or --tracking-uri")
    what = "finished search" if finished else "search"
    raise NothingToDo(f"no {what} in {where}: run python search/run.py first, or pass --experiment/--search-id")


def _experiment_ids(client: MlflowClient, experiment: str | None) -> list[str]:
    if experiment is None:
        ids, token = [], None
        while True:
            page = client.search_experiments(max_results=1000, page_token=token)
            ids += [e.experiment_id for e in page]
            token = page.token
            if not token:
                break
        if not ids:
            raise NothingToDo(f"no experiment at {public_uri(client.tracking_uri)}: run python search/run.py first")
        return ids
    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():  # an experiment id works too
        try:
            found = client.get_experiment(experiment)
        except MlflowException:
            found = None
    if found is None:
        raise NotFound(
            f"experiment {experiment!r} does not exist at {public_uri(client.tracking_uri)}: check --experiment"
        )
    return [found.experiment_id]


def experiment_of(client: MlflowClient, run: Run) -> str:
    """The name of the experiment a run belongs to."""
    return client.get_experiment(run.info.experiment_id).name
