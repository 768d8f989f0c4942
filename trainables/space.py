"""The conditional search space and the trial config's shape: `{"model": "svm", "feature_set": "basic", "svm":
{"C": 3.2, ...}, "seed": 0, "cv_folds": 5}`, flat as its run's params (`{"model": "svm", ..., "C": 3.2, ...}`)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import optuna

from search.common import contract as c
from search.common.contract import TRIAL_CONSTANTS
from search.common.trials import flat_params, hyperparams_of  # noqa: F401 - defined with the record
from trainables.features import FEATURE_SETS
from trainables.models import WEIGHTED, defaults, families
from trainables.prepare import TEXT_CHOICES


class SearchSpace:
    """A define-by-run space for OptunaSearch: model family first, then that family's hyperparameters; on a table
    with many-valued text (`text`), whether that text also gets its n-gram components (TEXT_CHOICES).

    `trial_index` is Optuna's trial number less the `first_number` trials a warm start put in the study. A class,
    not a closure, so that Tune can pickle the searcher when it checkpoints the experiment.
    """

    text = False  # what a space pickled before the text choice existed reads on `--resume`

    def __init__(
        self,
        models: Sequence[str],
        feature_sets: Sequence[str],
        seed: int,
        cv_folds: int,
        task: str = c.CLASSIFICATION,
        text: bool = False,
    ):
        known = families(task)
        unknown = [m for m in models if m not in known] + [f for f in feature_sets if f not in FEATURE_SETS]
        if unknown or not models or not feature_sets:
            raise KeyError(
                f"unknown or empty choices {unknown}: models {sorted(known)} ({task}), "
                f"feature sets {sorted(FEATURE_SETS)}"
            )
        self.models, self.feature_sets = list(models), list(feature_sets)
        self.seed, self.cv_folds, self.task, self.text = seed, cv_folds, task, text
        self.first_number = 0

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        model = trial.suggest_categorical(c.MODEL, self.models)
        trial.suggest_categorical(c.FEATURE_SET, self.feature_sets)
        if self.text:
            trial.suggest_categorical(c.TEXT_FEATURES, TEXT_CHOICES)
        families(self.task)[model].suggest(trial, model)
        config = {c.SEED: self.seed, c.CV_FOLDS: self.cv_folds, c.TRIAL_INDEX: trial.number - self.first_number}
        return config | ({c.TASK: self.task} if self.task == c.REGRESSION else {})

    def defaults(self) -> list[dict[str, Any]]:
        """Each searched family at its scikit-learn defaults on `basic` (or the first feature set), text with its
        components, as points."""
        feature_set = "basic" if "basic" in self.feature_sets else self.feature_sets[0]
        known = defaults(self.task)
        flat = [{c.MODEL: m, c.FEATURE_SET: feature_set, **known[m]} for m in known if m in self.models]
        return [self.point(f) for f in flat]

    def replay(self, flat: dict[str, Any]) -> optuna.trial.FixedTrial:
        """A flat configuration walked through this space: a FixedTrial with its params and distributions."""
        trial = optuna.trial.FixedTrial(self.point(flat))
        self(trial)
        return trial

    def point(self, flat: dict[str, Any]) -> dict[str, Any]:
        """A flat configuration (a trial's MLflow params) in the searcher's names (`svm/C`); ValueError if it does not
        fit this space."""
        model, feature_set = flat.get(c.MODEL), flat.get(c.FEATURE_SET)
        if model not in self.models:
            raise ValueError(f"model {model!r} is not one of the searched models ({','.join(self.models)})")
        if feature_set not in self.feature_sets:
            raise ValueError(f"feature set {feature_set!r} is not one of {','.join(self.feature_sets)}")
        text = flat.get(c.TEXT_FEATURES, TEXT_CHOICES[0])  # a trial from before the choice: its text had components
        if text not in TEXT_CHOICES:
            raise ValueError(f"{c.TEXT_FEATURES} {text!r} is not one of {','.join(TEXT_CHOICES)}")
        skip = {c.MODEL, c.FEATURE_SET, c.TEXT_FEATURES, c.TRIAL_INDEX, *TRIAL_CONSTANTS}
        named = {c.MODEL: model, c.FEATURE_SET: feature_set} | ({c.TEXT_FEATURES: text} if self.text else {})
        named |= {(k if "/" in k else f"{model}/{k}"): parse_param(v) for k, v in flat.items() if k not in skip}
        if model in WEIGHTED and self.task != c.REGRESSION:  # written before class weights were searched: the default
            named.setdefault(f"{model}/class_weight", "none")
        trial = optuna.trial.FixedTrial(named)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # FixedTrial only warns about a value out of range
            try:
                families(self.task)[model].suggest(trial, model)
            except (ValueError, UserWarning) as exc:
                missing = re.match(r"The value of the parameter '[^/']+/([^']+)' is not found", str(exc))
                if missing:
                    raise ValueError(f"{model} needs a value for {missing[1]}: give every hyperparameter") from None
                raise ValueError(f"{model}: {exc}") from None
        extra = sorted(k.split("/", 1)[1] for k in named if "/" in k and k not in trial.params)
        if extra:
            raise ValueError(f"{model} has no hyperparameter {', '.join(extra)}")
        return named


def config_from_params(params: dict[str, str]) -> dict[str, Any]:
    """Rebuild a trial config from the string params MLflow stored (the inverse of `flat_params`)."""
    model = params[c.MODEL]
    fixed = {c.MODEL, c.FEATURE_SET, c.TEXT_FEATURES, *TRIAL_CONSTANTS}
    hyper = {k: parse_param(v) for k, v in params.items() if k not in fixed}
    config: dict[str, Any] = {c.MODEL: model, c.FEATURE_SET: params[c.FEATURE_SET], model: hyper}
    if c.TEXT_FEATURES in params:
        config[c.TEXT_FEATURES] = params[c.TEXT_FEATURES]
    for key in TRIAL_CONSTANTS:
        if key in params:
            config[key] = params[key] if key == c.TASK else int(params[key])
    return config


def parse_param(value: Any) -> Any:
    """A param as MLflow stores it (a string) back to its value: int, float, None, bool or the string itself."""
    if not isinstance(value, str):
        return value
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return {"None": None, "True": True, "False": False}.get(value, value)
