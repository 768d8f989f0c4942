"""The second half of a release, once its version exists: the alias gate, the git tag, the model card.

Each step is safe to repeat, so a release that stopped half-way is completed by the next run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlflow import MlflowClient
from mlflow.entities.model_registry import ModelVersion

from search.common import contract
from search.common.trials import TIE_BREAK
from search.releasing import git_tag, registry
from search.releasing.budget import Budget
from search.releasing.choice import Choice
from search.releasing.model_card import build_card, iso, release_info, write
from search.releasing.retrain import Lineage, Scores

if TYPE_CHECKING:
    from search.releasing.flow import ReleaseSettings


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


def promote_if_better(args: ReleaseSettings, client: MlflowClient, ctx: Context) -> dict[str, Any]:
    """Apply the alias gate; record the decision on the version; the card's `promotion` section."""
    name, version = ctx.name, client.get_model_version(ctx.name, ctx.version.version)
    current = registry.holder(client, name, args.alias)
    score = ctx.scores.metrics[ctx.gate_metric]
    budget = Budget(args.max_predict_ms, args.max_model_mb)
    over = budget.excess(ctx.scores.metrics) if budget.active else None
    decision = registry.gate(client, version, score, ctx.gate_metric, current, args.force, over)
    if decision.move:
        registry.promote(client, name, args.alias, args.previous_alias, version, current)
    if decision.verdict == contract.HOLDS:
        verdict = version.tags.get("promotion", contract.PROMOTED)
        reason = version.tags.get("promotion_reason", decision.reason)
    else:
        verdict, reason = decision.verdict, decision.reason
        tags = {"promotion": verdict, "promotion_reason": reason, "promotion_alias": args.alias}
        if budget.active:
            tags["serving_budget"] = budget.describe()
        if verdict == contract.FORCED:
            tags["forced"] = "true"
        registry.record(client, name, version.version, tags)
    if decision.move:
        was = (
            f"; @{args.previous_alias} -> v{current.version}" if current and current.version != version.version else ""
        )
        print(f"@{args.alias} -> v{version.version}: {decision.reason}{was}")
    elif decision.verdict == contract.HOLDS:
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
    registry.record(client, ctx.name, v, {"git_tag": ctx.check.tag})
    return ctx.check.tag


def card_for(ctx: Context, promotion: dict[str, Any], tag: str | None) -> dict[str, Any]:
    """The model card of this release."""
    search, trial, scores, lin = ctx.chosen.search, ctx.chosen.best, ctx.scores, ctx.lineage
    serving = {k: scores.metrics[k] for k in contract.COSTS if k in scores.metrics}
    test_metrics: dict[str, Any] = {k: v for k, v in scores.metrics.items() if "." not in k and k not in serving}
    test_metrics["per_class"] = {str(c): scores.report[str(c)] for c in scores.classes}
    test_metrics["confusion_matrix"] = {"classes": [str(c) for c in scores.classes], "matrix": scores.matrix}
    lineage = {
        "git_commit": trial.data.tags.get("git_commit") or search.data.tags.get("git_commit"),
        "git_dirty_at_search": search.data.tags.get("git_dirty", "unknown"),
        "dataset": search.data.tags.get("dataset"),
        "dataset_source": lin.dataset_source,
        "dataset_digest": lin.dataset_digest,
        "target": lin.target,
        "test_size": lin.test_size,
        "split_seed": lin.split_seed,
        "search_id": ctx.chosen.search_id,
        "search_run_id": search.info.run_id,
        "trial_run_id": trial.info.run_id,
        "release_tree_dirty": ctx.check.dirty if ctx.check else None,
        "n_dev_rows": ctx.rows[0],
        "n_test_rows": ctx.rows[1],
    }
    runner = ctx.chosen.runner_up
    selection = {
        "metric": ctx.chosen.metric,
        "tie_break": TIE_BREAK,
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
    card["serving"] = {**serving, "measured_on": "the test part, 1,000 rows cycled; median of 5 timings"}
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
    registry.record(client, ctx.name, ctx.version.version, {"release_complete": "true"})
    client.set_tag(ctx.run_id, "release_status", "complete")
    print(f"model card: {paths[0]} and {paths[1].name}; release info: {paths[2]}")
