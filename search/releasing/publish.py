"""The second half of a release, once its version exists: the alias gate, the git tag, the model card.

Each step is safe to repeat, so a release that stopped half-way is completed by the next run.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from search.common import contract as c
from search.common.connect import DEFAULT_TRACKING_URI
from search.common.trials import tie_break
from search.releasing import git_tag, paired, registry
from search.releasing.budget import Budget
from search.releasing.choice import Choice
from search.releasing.model_card import build_card, iso, release_info, summary, write
from search.releasing.retrain import Lineage, Scores, same_data
from trainables.data import Split


@dataclass
class ReleaseSettings:
    """What `search/release.py` was asked to do (here, where the last steps read it; flow.py imports it)."""

    tracking_uri: str = DEFAULT_TRACKING_URI
    experiment: str | None = None  # None: the latest finished search of any experiment
    search_id: str | None = None
    metric: str | None = None  # None: the metric the search ranked by
    model_name: str | None = None  # None: the contract's `<experiment>_best_model`
    alias: str = c.ALIAS
    previous_alias: str = c.PREVIOUS_ALIAS
    force: bool = False
    out: Path = field(default_factory=lambda: Path("releases"))
    repo: Path = field(default_factory=Path.cwd)
    no_tag: bool = False
    allow_dirty: bool = False
    push: bool = False
    remote: str = "origin"
    max_predict_ms: float | None = None  # a serving budget: only trials within it compete
    max_model_mb: float | None = None
    dataset: str | None = None  # this machine's copy of the search's table, when it was read elsewhere


@dataclass(frozen=True)
class Context:
    """What the release decided and computed before publishing."""

    name: str
    version: ModelVersion
    scores: Scores
    chosen: Choice
    lineage: Lineage
    check: git_tag.Preflight | None
    run_id: str
    gate_metric: str
    rows: tuple[int, int]
    split: Split | None = None  # the rebuilt split: the gate predicts its test rows with the holder


def row_by_row(ctx: Context) -> Callable[[ModelVersion], paired.Paired | paired.PairedErrors]:
    """How the gate compares the new version with a holder: the holder's registered model predicts the same test
    rows, and each row is right or wrong for each (for a regressor: each row's error)."""

    def compare(holder: ModelVersion) -> paired.Paired | paired.PairedErrors:
        import mlflow.sklearn

        if ctx.split is None or len(ctx.scores.predicted) != len(ctx.split.y_test):
            raise ValueError("the new version's predictions on the test rows are missing")
        model = mlflow.sklearn.load_model(f"models:/{ctx.name}/{holder.version}")
        truth = np.asarray(ctx.split.y_test)
        theirs = np.asarray(model.predict(ctx.split.X_test))
        if ctx.split.task == c.REGRESSION:
            return paired.compare_errors(np.asarray(ctx.scores.predicted) - truth, theirs - truth)
        return paired.compare(np.asarray(ctx.scores.predicted) == truth, theirs == truth)

    return compare


def promote_if_better(args: ReleaseSettings, client: MlflowClient, ctx: Context) -> dict[str, Any]:
    """Apply the alias gate; record the decision on the version; the card's `promotion` section."""
    name, version = ctx.name, client.get_model_version(ctx.name, ctx.version.version)
    current = registry.holder(client, name, args.alias)
    score = ctx.scores.metrics[ctx.gate_metric]
    budget = Budget(args.max_predict_ms, args.max_model_mb)
    over = budget.excess(ctx.scores.metrics) if budget.active else None
    same = functools.partial(same_data, ctx.lineage)
    decision = registry.gate(client, version, score, ctx.gate_metric, current, args.force, over, row_by_row(ctx), same)
    compared = decision.paired.as_dict() if decision.paired is not None else None
    if decision.move:
        registry.promote(client, name, args.alias, args.previous_alias, version, current)
    if decision.verdict == c.HOLDS:
        verdict = version.tags.get(c.PROMOTION, c.PROMOTED)
        reason = version.tags.get(c.PROMOTION_REASON, decision.reason)
        compared = json.loads(version.tags.get(c.PROMOTION_PAIRED, "null"))
    else:
        verdict, reason = decision.verdict, decision.reason
        tags = {c.PROMOTION: verdict, c.PROMOTION_REASON: reason, c.PROMOTION_ALIAS: args.alias}
        if compared is not None:
            tags[c.PROMOTION_PAIRED] = json.dumps(compared)
        elif c.PROMOTION_PAIRED in version.tags:  # an earlier run's comparison no longer says why
            client.delete_model_version_tag(name, version.version, c.PROMOTION_PAIRED)
        if budget.active:
            tags[c.SERVING_BUDGET] = budget.describe()
        if verdict == c.FORCED:
            tags[c.FORCED] = "true"
        registry.record(client, name, version.version, tags)
    if decision.move:
        moved = current is not None and current.version != version.version
        was = f"; @{args.previous_alias} -> v{current.version}" if moved else ""
        print(f"@{args.alias} -> v{version.version}: {decision.reason}{was}")
    elif decision.verdict == c.HOLDS:
        print(f"@{args.alias} already on v{version.version}")
    elif current is None:
        print(f"@{args.alias} not set: {decision.reason}")
    else:
        print(f"@{args.alias} stays on v{current.version}: {decision.reason}")
    holds = registry.holder(client, name, args.alias)
    return {
        "alias": args.alias,
        "verdict": verdict,
        "reason": reason,
        "holds_alias": holds is not None and holds.version == version.version,
        "gate_metric": ctx.gate_metric,
        **({"paired": compared} if compared is not None else {}),
    }


def tag_commit(args: ReleaseSettings, client: MlflowClient, ctx: Context) -> str | None:
    """Create (and push) the annotated tag on the training commit; its name, or None with --no-tag."""
    if ctx.check is None:
        return None
    v = ctx.version.version
    score = ctx.scores.metrics[ctx.gate_metric]
    text = git_tag.message(ctx.name, v, ctx.gate_metric, score, ctx.chosen.search_id, ctx.chosen.best.info.run_id)
    created = git_tag.create(ctx.check, text)
    where = f"{ctx.check.tag} on {ctx.check.commit[:12]}"
    print(f"git tag {where} (annotated)" if created else f"git tag {where} exists already")
    if args.push:
        git_tag.push(ctx.check, args.remote)
        print(f"pushed {ctx.check.tag} to {args.remote}")
    registry.record(client, ctx.name, v, {c.GIT_TAG: ctx.check.tag})
    return ctx.check.tag


def card_for(ctx: Context, promotion: dict[str, Any], tag: str | None) -> dict[str, Any]:
    """The model card of this release."""
    search, trial, scores, lin = ctx.chosen.search, ctx.chosen.best, ctx.scores, ctx.lineage
    serving = {k: int(v) if k == c.MODEL_BYTES else v for k, v in scores.metrics.items() if k in c.COSTS}  # bytes: int
    test_metrics: dict[str, Any] = {k: scores.metrics[k] for k in c.TEST_SCORES if k in scores.metrics}
    if c.TARGET_STD in scores.metrics:  # a regressor: the target's spread, and the error in its units
        test_metrics[c.TARGET_STD] = scores.metrics[c.TARGET_STD]
    else:
        test_metrics["per_class"] = {str(k): scores.report[str(k)] for k in scores.classes}
        test_metrics[c.CONFUSION_MATRIX] = {"classes": [str(k) for k in scores.classes], "matrix": scores.matrix}
    lineage = {
        c.GIT_COMMIT: trial.data.tags.get(c.GIT_COMMIT) or search.data.tags.get(c.GIT_COMMIT),
        "git_dirty_at_search": search.data.tags.get(c.GIT_DIRTY, "unknown"),
        c.DATASET: search.data.tags.get(c.DATASET),
        c.DATASET_SOURCE: lin.dataset_source,
        c.DATASET_DIGEST: lin.dataset_digest,
        **({c.TARGET: lin.target} if lin.target else {}),  # a CSV's label column; a bundled set has its own
        c.TEST_SIZE: lin.test_size,
        c.SPLIT_SEED: lin.split_seed,
        c.SEARCH_ID: ctx.chosen.search_id,
        "search_run_id": search.info.run_id,
        "trial_run_id": trial.info.run_id,
        "release_tree_dirty": ctx.check.dirty if ctx.check else None,
        c.N_DEV_ROWS: ctx.rows[0],
        c.N_TEST_ROWS: ctx.rows[1],
    }
    runner = ctx.chosen.runner_up
    selection = {
        c.METRIC: ctx.chosen.metric,
        "tie_break": tie_break(ctx.chosen.metric),
        "decided_by": ctx.chosen.rule,
        "runner_up": runner.info.run_id if runner else None,
        "eligible_trials": ctx.chosen.n_eligible,
    }
    card = build_card(
        model_name=ctx.name,
        version=ctx.version.version,
        created_at=iso(ctx.version.creation_timestamp),
        run_id=ctx.run_id,
        trial_metrics=dict(trial.data.metrics),
        parameters=dict(lin.params),
        test_metrics=test_metrics,
        lineage=lineage,
        selection=selection,
        promotion=promotion,
        git_tag=tag,
    )
    card["columns"] = [
        {"column": col.name, "role": col.role, "missing": col.missing, "what_is_done": col.treatment}
        for col in ctx.split.roles.columns
    ]
    measured = "the test part, 1,000 rows cycled; CPU time of one thread, median of 5"
    card["serving"] = {**serving, "measured_on": measured}
    return card


def publish(args: ReleaseSettings, client: MlflowClient, ctx: Context) -> None:
    """Gate, tag, write and log the card and release info, then mark the release complete."""
    promotion = promote_if_better(args, client, ctx)
    tag = tag_commit(args, client, ctx)
    card = card_for(ctx, promotion, tag)
    holds = registry.holder(client, ctx.name, args.alias)
    info = release_info(card, ctx.run_id, holds.version if holds else None)
    paths = write(args.out / ctx.name / f"v{ctx.version.version}", card, info)
    for path in paths:
        client.log_artifact(ctx.run_id, str(path), "release")
    client.update_model_version(ctx.name, ctx.version.version, description=summary(card))  # the registry page
    registry.record(client, ctx.name, ctx.version.version, {c.RELEASE_COMPLETE: "true"})
    client.set_tag(ctx.run_id, c.RELEASE_STATUS, "complete")
    print(f"model card: {paths[0]} and {paths[1].name}; release info: {paths[2]}")
