"""Hyperparameter importance: rebuild a search's trials as an Optuna study and run Optuna's PED-ANOVA on it.

A conditional parameter (`<model>/<hyperparameter>`) is weighed over the trials that have it, when at least
MIN_PARAM_TRIALS do. Distributions come from the search space, or are inferred from the values MLflow recorded.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import optuna
import pandas as pd
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.importance import PedAnovaImportanceEvaluator
from optuna.trial import FixedTrial, FrozenTrial, TrialState, create_trial

from search.common import contract
from search.common.trials import row_dict
from trainables.models import MODEL_FAMILIES, REGRESSORS, WEIGHTED
from trainables.space import parse_param

MIN_TRIALS = 4
MIN_PARAM_TRIALS = 5  # a parameter fewer trials have is not ranked


@dataclass
class Importance:
    """Normalised importances (summing to 1, largest first) of `model` and `feature_set` over all completed trials,
    and `per_family` each family's own; `having` and `unranked` count the trials of parameters fewer trials have."""

    values: dict[str, float]
    n_trials: int
    method: str
    note: str = ""
    per_family: dict[str, Importance] = field(default_factory=dict)
    having: dict[str, int] = field(default_factory=dict)
    unranked: dict[str, int] = field(default_factory=dict)


def _trial_params(row: dict[str, Any], hyperparams: list[str]) -> dict[str, Any]:
    model = str(row[contract.MODEL])
    params: dict[str, Any] = {contract.MODEL: model, contract.FEATURE_SET: str(row[contract.FEATURE_SET])}
    params.update({f"{model}/{k}": parse_param(row[k]) for k in hyperparams if row.get(k) is not None})
    if isinstance(row.get(contract.TEXT_FEATURES), str):  # a table with many-valued text: the searched choice
        params[contract.TEXT_FEATURES] = row[contract.TEXT_FEATURES]
    return params


def _space_distributions(model: str, params: dict[str, Any]) -> dict[str, BaseDistribution]:
    classifier = model in MODEL_FAMILIES and (model not in WEIGHTED or f"{model}/class_weight" in params)
    family = MODEL_FAMILIES.get(model) if classifier else REGRESSORS.get(model)  # a regressor's: no class weight
    if family is None:
        return {}
    trial = FixedTrial(params)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            family.suggest(trial, model)
    except (ValueError, TypeError, KeyError):
        return {}
    return dict(trial.distributions)


def _inferred(values: list[Any]) -> BaseDistribution:
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return IntDistribution(min(values), max(values))
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return FloatDistribution(float(min(values)), float(max(values)))
    return CategoricalDistribution(sorted({str(v) for v in values}))


def _distributions(trials: list[dict[str, Any]], choices: dict[str, list[str]]) -> dict[str, BaseDistribution]:
    """One distribution per parameter name, containing every recorded value."""
    dists: dict[str, BaseDistribution] = {}
    observed: dict[str, list[Any]] = {}
    for params in trials:
        for name, value in params.items():
            observed.setdefault(name, []).append(value)
        for name, dist in _space_distributions(params[contract.MODEL], params).items():
            dists.setdefault(name, dist)
    for key in (contract.MODEL, contract.FEATURE_SET):
        dists[key] = CategoricalDistribution(list(dict.fromkeys([*choices.get(key, []), *observed[key]])))
    for name, values in observed.items():
        dist = dists.get(name)
        if dist is None or not all(_within(dist, v) for v in values):
            dists[name] = _inferred(values)
    return dists


def _within(dist: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one `dist` can take (through the distributions' public attributes)."""
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    low, high = getattr(dist, "low", None), getattr(dist, "high", None)
    try:
        return low is not None and low <= float(value) <= high
    except (TypeError, ValueError):
        return False


def _fit(dist: BaseDistribution, value: Any) -> Any:
    if isinstance(dist, CategoricalDistribution) and value not in dist.choices:
        return str(value)
    return value


def _new_study() -> optuna.Study:
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        return optuna.create_study(direction="maximize")
    finally:
        optuna.logging.set_verbosity(verbosity)


def rebuild_study(
    frame: pd.DataFrame, hyperparams: list[str], metric: str = contract.VAL_ACCURACY, choices: dict | None = None
) -> optuna.Study:
    """An in-memory Optuna study (maximising `metric`; an error such as RMSE negated) holding the completed trials
    of `frame`."""
    sign = -1.0 if contract.mode_of(metric) == "min" else 1.0
    rows = [row_dict(r) for _, r in frame.iterrows() if r[contract.OUTCOME] == contract.COMPLETED]
    trials = [_trial_params(r, hyperparams) for r in rows]
    study = _new_study()
    if not trials:
        return study
    dists = _distributions(trials, choices or {})
    for row, p in zip(rows, trials, strict=True):
        fitted = {k: _fit(dists[k], v) for k, v in p.items()}
        study.add_trial(_complete(sign * float(row[metric]), fitted, {k: dists[k] for k in p}, run_id=row["run_id"]))
    return study


def _complete(value: float, params: dict[str, Any], dists: dict[str, BaseDistribution], **attrs: Any) -> FrozenTrial:
    return create_trial(state=TrialState.COMPLETE, value=value, params=params, distributions=dists, user_attrs=attrs)


def _ped_anova(trials: list[FrozenTrial], params: list[str], what: str) -> Importance:
    """PED-ANOVA importances of `params` over `trials`, each over the trials that have it, normalised to sum to 1."""
    n = len(trials)
    if n < MIN_TRIALS:
        return Importance({}, n, "none", f"{n} completed trial(s): importance needs at least {MIN_TRIALS}")
    method = (
        f"Optuna PedAnovaImportanceEvaluator (target_quantile={_quantile(n):.2f}, over {n} completed trials {what}; "
        f"each parameter over the trials that have it, at least {MIN_PARAM_TRIALS})"
    )
    if len({t.value for t in trials}) == 1:
        return Importance({}, n, method, "every completed trial scored the same: no parameter separated them")
    raw: dict[str, float] = {}
    having: dict[str, int] = {}
    unranked: dict[str, int] = {}
    for name in params:
        mine = [t for t in trials if name in t.params]
        if len(mine) < MIN_PARAM_TRIALS:
            unranked[name] = len(mine)
            continue
        if len(mine) < n:
            having[name] = len(mine)
        raw[name] = _raw_importance(mine, name)
    total = sum(raw.values())
    if total <= 0:
        return Importance({}, n, method, "no parameter separated the best trials from the rest", {}, having, unranked)
    values = {k: v / total for k, v in sorted(raw.items(), key=lambda kv: -kv[1])}
    return Importance(values, n, method, "", {}, having, unranked)


def _quantile(n: int) -> float:
    return min(0.5, max(0.1, 5 / n))


def _raw_importance(trials: list[FrozenTrial], name: str) -> float:
    """The unnormalised PED-ANOVA importance of one parameter over `trials`, all of which have it."""
    if len({t.value for t in trials}) == 1:
        return 0.0
    study = _new_study()
    study.add_trials([_complete(t.value, {name: t.params[name]}, {name: t.distributions[name]}) for t in trials])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = optuna.importance.get_param_importances(
            study, evaluator=PedAnovaImportanceEvaluator(target_quantile=_quantile(len(trials))), normalize=False
        )
    return float(raw.get(name, 0.0))


def param_importance(study: optuna.Study) -> Importance:
    """PED-ANOVA importances of reaching the top trials' scores, over all completed trials and per model family."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    text = [contract.TEXT_FEATURES] if any(contract.TEXT_FEATURES in t.params for t in complete) else []
    shared = _ped_anova(complete, [contract.MODEL, contract.FEATURE_SET, *text], "of every family")
    for family in dict.fromkeys(str(t.params[contract.MODEL]) for t in complete):
        mine = [t for t in complete if t.params[contract.MODEL] == family]
        params = sorted({p for t in mine for p in t.params if p.startswith(f"{family}/")}) + [contract.FEATURE_SET]
        params += text
        shared.per_family[family] = _ped_anova(mine, params, f"of {family}")
    return shared
