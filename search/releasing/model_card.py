"""The model card of a release (JSON and its Markdown rendering) and `model_release_info.json`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from search.common import contract as c
from search.common.contract import SCORES
from search.common.runs_table import markdown_table
from search.releasing.paired import ALPHA, fewest_discordant


def iso(millis: int | None) -> str:
    """An MLflow timestamp (ms since the epoch) as ISO 8601 UTC."""
    moment = datetime.fromtimestamp((millis or 0) / 1000, tz=UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def build_card(
    *,
    model_name: str,
    version: str,
    created_at: str,
    run_id: str,
    trial_metrics: dict[str, float],
    parameters: dict[str, str],
    test_metrics: dict[str, Any],
    lineage: dict[str, Any],
    selection: dict[str, Any],
    promotion: dict[str, Any],
    git_tag: str | None,
) -> dict[str, Any]:
    """The card as one JSON-ready dict; `metrics` are the trial's cross-validated ones, `test_metrics` the release's."""
    dataset = lineage.get(c.DATASET, "the dataset")
    regression = c.TEST_RMSE in test_metrics
    return {
        "model_name": model_name,
        "version": str(version),
        "created_at": created_at,
        c.MODEL_URI: f"models:/{model_name}/{version}",
        "run_id": run_id,
        "metrics": {k: trial_metrics[k] for k in SCORES if k in trial_metrics},
        "test_metrics": test_metrics,
        "parameters": dict(sorted(parameters.items())),
        "lineage": lineage,
        "selection": selection,
        c.PROMOTION: promotion,
        c.GIT_TAG: git_tag,
        "intended_use": (
            f"{'Predict the target of' if regression else 'Classify'} rows shaped like {dataset} (its raw feature "
            "columns as the table has them: numbers, text, empty cells; the model prepares them itself)"
            + (", a number in the target's units." if regression else " into its classes.")
        ),
        "limitations": [
            _small_test_part(lineage, test_metrics),
            "Valid only for inputs from the distribution of the training data; there is no drift or outlier check.",
            "Chosen on cross-validated scores of the development part; the test part was used once, for this card.",
            "No fairness, robustness or calibration assessment was made.",
        ],
    }


def _small_test_part(lineage: dict[str, Any], test_metrics: dict[str, Any]) -> str:
    rows = f"Trained on {lineage.get(c.N_DEV_ROWS, '?')} rows and tested on {lineage.get(c.N_TEST_ROWS, '?')}"
    if c.TEST_RMSE in test_metrics:
        spread = test_metrics.get(c.TARGET_STD) or float("nan")
        return (
            f"{rows}: the test RMSE is {test_metrics[c.TEST_RMSE] / spread:.2f} of the target's standard deviation "
            f"there ({spread:.4g}; predicting the mean scores 1.00), and the alias gate moves only when a Wilcoxon "
            f"signed-rank test on the rows' squared errors tells two versions apart (p < {ALPHA:g})."
        )
    return (
        f"{rows}: scores on so small a test part move in steps of a whole row, and the alias gate tells two versions "
        f"apart only by at least {fewest_discordant()} rows one gets right and the other wrong, all one way (an "
        f"exact McNemar test at p < {ALPHA:g})."
    )


def _table(rows: dict[str, Any]) -> list[str]:
    cells = [[str(k), f"{v:.4f}" if isinstance(v, float) else str(v)] for k, v in rows.items()]
    return markdown_table(["name", "value"], cells).splitlines()


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    test = card["test_metrics"]
    headline = {k: v for k, v in test.items() if not isinstance(v, dict)}
    lines = [f"# Model card: {card['model_name']} v{card['version']}", ""]
    lines += [f"Created {card['created_at']} by release run `{card['run_id']}`; model URI `{card[c.MODEL_URI]}`."]
    if card.get(c.GIT_TAG):
        lines[-1] += f" Git tag `{card[c.GIT_TAG]}`."
    lines += ["", "## Test metrics (held-out test part)", "", *_table(headline)]
    per_class = test.get("per_class", {})
    if per_class:
        lines += ["", "| class | precision | recall | f1 | support |", "|---|---|---|---|---|"]
        for cls, row in per_class.items():
            cells = [f"{row.get(k, 0):.4f}" for k in ("precision", "recall", "f1-score")]
            lines.append(f"| {cls} | {' | '.join(cells)} | {int(row.get('support', 0))} |")
    if card.get("serving"):
        lines += ["", "## Serving cost (measured on the test part)", "", *_table(card["serving"])]
    lines += ["", "## Cross-validated metrics of the trial (development part)", "", *_table(card["metrics"])]
    lines += ["", "## Parameters", "", *_table(card["parameters"])]
    if card.get("columns"):
        lines += ["", "## Columns", "", "| column | role | missing | what is done |", "|---|---|---|---|"]
        lines += [f"| {r['column']} | {r['role']} | {r['missing']} | {r['what_is_done']} |" for r in card["columns"]]
    lines += ["", "## Lineage", "", *_table(card["lineage"])]
    sel = card["selection"]
    better = "lower" if c.mode_of(sel[c.METRIC]) == "min" else "higher"
    lines += ["", "## Selection", "", f"Ranked by {better} `{sel[c.METRIC]}`; ties: {sel['tie_break']}."]
    lines += [f"Decided by: {sel['decided_by']}."]
    if sel.get("runner_up"):
        lines[-1] += f" Runner-up: trial run `{sel['runner_up']}`."
    promo = card[c.PROMOTION]
    lines += ["", "## Promotion", "", f"`@{promo['alias']}`: {promo['verdict']} ({promo['reason']})."]
    if promo.get("paired"):
        pair = promo["paired"]
        lines += ["", f"Compared with the holder on the same test rows: {pair['test']}, p < {pair['alpha']:g} to move."]
        shown = ("n_rows", "new_right", "holder_right", "new_only", "holder_only", "new_rmse", "holder_rmse",
                 "new_closer", "holder_closer", "p_value", "margin")  # fmt: skip
        lines += ["", *_table({k: pair[k] for k in shown if k in pair})]
    lines += ["", "## Intended use", "", card["intended_use"], "", "## Limitations", ""]
    lines += [f"- {item}" for item in card["limitations"]]
    return "\n".join(lines) + "\n"


def summary(card: dict[str, Any]) -> str:
    """The card in a few lines of Markdown: the registered version's description, shown on MLflow's registry page."""
    params, lineage, promo = card["parameters"], card["lineage"], card[c.PROMOTION]
    scores = ", ".join(f"{k} {v:.4f}" for k, v in card["test_metrics"].items() if isinstance(v, float))
    lines = [
        f"**{params.get(c.MODEL)}** on feature set **{params.get(c.FEATURE_SET)}**: search "
        f"`{lineage.get(c.SEARCH_ID)}`, trial run `{lineage.get('trial_run_id')}` "
        f"(decided by: {card['selection'].get('decided_by')}).",
        f"Held-out test part ({lineage.get(c.N_TEST_ROWS, '?')} rows): {scores}.",
        f"`@{promo['alias']}`: {promo['verdict']}: {promo['reason']}.",
        f"Lineage: commit `{lineage.get(c.GIT_COMMIT)}`"
        + (f", git tag `{card[c.GIT_TAG]}`" if card.get(c.GIT_TAG) else "")
        + f", dataset {lineage.get(c.DATASET)} (digest `{str(lineage.get(c.DATASET_DIGEST))[:19]}…`).",
        f"Model card: `model_card.md` under `release/` of release run `{card['run_id']}`.",
    ]
    return "\n\n".join(lines)


def release_info(card: dict[str, Any], release_run_id: str, alias_holder: str | None) -> dict[str, Any]:
    """`model_release_info.json`: where the release is and how to load or serve it."""
    name, alias = card["model_name"], card[c.PROMOTION]["alias"]
    return {
        "model_name": name,
        "version": card["version"],
        c.MODEL_URI: card[c.MODEL_URI],
        "alias": alias,
        "alias_uri": f"models:/{name}@{alias}",
        "alias_holder": alias_holder,
        c.PROMOTION: card[c.PROMOTION],
        "test_metrics": {k: v for k, v in card["test_metrics"].items() if not isinstance(v, dict)},
        "release_run_id": release_run_id,
        c.SEARCH_ID: card["lineage"].get(c.SEARCH_ID),
        c.SOURCE_RUN_ID: card["lineage"].get("trial_run_id"),
        c.GIT_COMMIT: card["lineage"].get(c.GIT_COMMIT),
        c.GIT_TAG: card.get(c.GIT_TAG),
        "model_card": "model_card.json",
        "serve": f'mlflow models serve -m "models:/{name}@{alias}" --env-manager local -h 127.0.0.1 -p 5001',
    }


def write(out_dir: Path, card: dict[str, Any], info: dict[str, Any]) -> list[Path]:
    """Write the card (JSON, Markdown) and the release info into `out_dir` (one folder per model version, so no
    release overwrites another's); the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "model_card.json", out_dir / "model_card.md", out_dir / "model_release_info.json"]
    paths[0].write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    paths[1].write_text(render_markdown(card))
    paths[2].write_text(json.dumps(info, indent=2) + "\n")
    return paths
