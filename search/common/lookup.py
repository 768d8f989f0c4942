"""Finding things in MLflow: a search's parent run, the experiment a run belongs to, a search's trials.

These are the project's queries of the tracking store; they sit above the names they query by (`contract`) and the
record they return (`trials.Trial`), which depend on nothing else in the project (docs/design.md, "A bottom layer").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from search.common import contract as c
from search.common.connect import public_uri
from search.common.errors import NothingToDo, UsageError
from search.common.trials import Trial

if TYPE_CHECKING:
    from mlflow.entities import Run
    from mlflow.tracking import MlflowClient


def find_search(
    client: MlflowClient, search_id: str | None = None, experiment: str | None = None, finished: bool = False
) -> Run:
    """The parent run of a search: by `search_id`, or the latest one (`finished`: the latest FINISHED one).

    `experiment` (a name or an id) limits the look to one experiment; without it every experiment of the
    tracking store is searched, so the latest search is found whatever its dataset. Raises UsageError for a
    named search or experiment that is not there, NothingToDo when there is no search at all.
    """
    experiments = _experiment_ids(client, experiment)
    query = f"tags.{c.RUN_TYPE} = '{c.SEARCH_RUN}'"
    if search_id:
        query += f" and tags.{c.SEARCH_ID} = '{search_id}'"
    elif finished:
        query += " and attributes.status = 'FINISHED'"
    runs = client.search_runs(experiments, query, order_by=["attributes.start_time DESC"], max_results=1)
    if runs:
        return runs[0]
    where = f"experiment {experiment!r}" if experiment else f"any experiment at {public_uri(client.tracking_uri)}"
    if search_id:
        raise UsageError(f"no search {search_id!r} in {where}: check the id, --experiment or --tracking-uri")
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
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(experiment)
    if found is None and experiment.isdigit():  # an experiment id works too
        try:
            found = client.get_experiment(experiment)
        except MlflowException:
            found = None
    if found is None:
        raise UsageError(
            f"experiment {experiment!r} does not exist at {public_uri(client.tracking_uri)}: check --experiment"
        )
    return [found.experiment_id]


def experiment_of(client: MlflowClient, run: Run) -> str:
    """The name of the experiment a run belongs to."""
    return client.get_experiment(run.info.experiment_id).name


def search_trials(client: MlflowClient, experiment_id: str, search_id: str, finished: bool = False) -> list[Trial]:
    """Every trial run of a search (`finished`: the FINISHED ones), as Trials."""
    query = f"tags.{c.SEARCH_ID} = '{search_id}' and tags.{c.RUN_TYPE} = '{c.TRIAL_RUN}'"
    query += " and attributes.status = 'FINISHED'" if finished else ""
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], query, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return [Trial.from_run(r) for r in runs]
