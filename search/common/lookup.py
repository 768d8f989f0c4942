"""Finding things in MLflow: a search's parent run, the experiment a run belongs to, a search's trials."""

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
    """The parent run of a search: by `search_id`, or the latest (`finished`: FINISHED) one, in `experiment` (a name
    or an id) or in every experiment. UsageError for a named one not there, NothingToDo when there is none."""
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
        pages = _every_page(lambda token: client.search_experiments(max_results=1000, page_token=token))
        ids = [e.experiment_id for e in pages]
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
    runs = _every_page(lambda token: client.search_runs([experiment_id], query, max_results=1000, page_token=token))
    return [Trial.from_run(r) for r in runs]


def _every_page(fetch) -> list:
    """All items of a paged MLflow search: `fetch(page_token)` until no token comes back."""
    items, token = [], None
    while True:
        page = fetch(token)
        items += page
        if not (token := page.token):
            return items
