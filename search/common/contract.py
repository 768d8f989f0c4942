"""One source for every name the search writes to MLflow and the release, the report, benchmarks and tests read
(described in docs/tracking.md, which `tests/unit/test_contract.py` checks names every one)."""

from __future__ import annotations

from enum import StrEnum

# Experiments, registered models, aliases and git tags: one rule for every dataset.
ALIAS = "champion"
PREVIOUS_ALIAS = "previous"
# A registered version's tag `promotion`: what the release's alias gate decided for it.
PROMOTED, KEPT, FORCED, OVER_BUDGET, HOLDS = "promoted", "kept", "forced", "over_budget", "holds"
PROMOTION_VERDICTS = (PROMOTED, KEPT, FORCED, OVER_BUDGET)  # HOLDS is said, never recorded
LOGGED_MODEL = "model"  # the name the release logs its Pipeline under (a LoggedModel of the release run)


# The task a search learns (param `task` of its parent run; tag `task_reason`: why, when it was read off the target).
TASK, TASK_REASON = "task", "task_reason"
CLASSIFICATION, REGRESSION = "classification", "regression"
TASKS = (CLASSIFICATION, REGRESSION)


def experiment_name(dataset: str, task: str = CLASSIFICATION) -> str:
    """`<dataset>_<task>` (Iris: `iris_classification`; diabetes: `diabetes_regression`)."""
    return f"{dataset}_{task}"


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
RECORDED_ON_RESUME = "recorded_on_resume"  # `true` on a trial run made from Tune's state by --resume
CONFUSION_MATRIX = "confusion_matrix"  # tag: the out-of-fold confusion matrix as JSON rows (true class by row)
CONFUSION_MATRIX_PNG = "confusion_matrix.png"  # artifact: its figure, on the best trial of each model family
# A regressor's counterpart (tag: JSON {"actual": [...], "predicted": [...]}, out of fold) and its figure.
PREDICTED_ACTUAL, PREDICTED_ACTUAL_PNG = "predicted_actual", "predicted_actual.png"
GIT_COMMIT, GIT_DIRTY, CODE_DIGEST = "git_commit", "git_dirty", "code_digest"  # the code that ran (lineage.py)
DATASET, DATASET_DIGEST = "dataset", "dataset_digest"  # a param of the search and a tag of every run
LINEAGE_TAGS = (GIT_COMMIT, GIT_DIRTY, CODE_DIGEST, DATASET, DATASET_DIGEST)  # on every trial run, from the search
NODE_TAGS = (NODE, HOSTNAME) = ("node", "hostname")  # where a trial ran, from its result
ERROR = "error"  # tag of a failed trial run: the last line of its error
BEST_TRIAL_RUN_ID = "best_trial_run_id"  # tag of the search's parent run, set when the search ends
SOURCE_RUN_ID = "source_run_id"  # tag of a registered version (and its release run): the trial it came from
# A cluster that breathes: what a trial lost to a vanished worker, and how many nodes a search used.
LOST_ATTEMPTS = "lost_attempts"  # tag of a trial run: attempts lost with their actor (its node died or drained)
LOST_ATTEMPT = "lost_attempt"  # tag `lost_attempt_<n>`: the error that ended the n-th lost attempt
FOLDS_RESTORED = "folds_restored"  # in every result, and a trial run's tag: folds its last attempt took over
FOLDS_REDONE = "folds_redone"  # tag of a trial run: folds it had reported, lost with a worker, and fitted again
FOLDS_KEPT = "folds_kept"  # tag of a trial run whose worker does not see Tune's storage: its finished folds (JSON)
MAX_TAG_CHARS = 5000  # the longest tag value the project writes (MLflow's limit on a tag's value)
NODES_USED = "nodes_used"  # metric of the parent run: the Ray nodes its trials ran on
ELASTIC_NAMES = (LOST_ATTEMPTS, LOST_ATTEMPT, FOLDS_RESTORED, FOLDS_REDONE, FOLDS_KEPT, NODES_USED)
# Where a search keeps its state (tag `tune_path` of its parent run: Tune's folder) and its Optuna study in it.
TUNE_PATH, STUDY_JOURNAL = "tune_path", "optuna-journal.log"
# More tags of the search's parent run: where its data was read, `resumed=true` once `--resume` continued it.
DATASET_SOURCE, RESUMED = "dataset_source", "resumed"
SEARCH_TAGS = (TUNE_PATH, DATASET_SOURCE, RESUMED, BEST_TRIAL_RUN_ID)
# A registered version's tags (its lineage, what the alias gate decided, its git tag, its evaluation run) and the
# release run's `model_uri` (its logged Pipeline) and `release_status`.
CONFIG, PROMOTION, PROMOTION_REASON, PROMOTION_ALIAS = "config", "promotion", "promotion_reason", "promotion_alias"
SERVING_BUDGET, ROLLED_BACK, GIT_TAG = "serving_budget", "rolled_back", "git_tag"
EVALUATION_RUN_ID, DIRTY_RELEASE, RELEASE_COMPLETE = "evaluation_run_id", "released_from_dirty_tree", "release_complete"
MODEL_URI, RELEASE_STATUS = "model_uri", "release_status"
PROMOTION_PAIRED = "promotion_paired"  # the gate's row-by-row comparison with the holder (JSON), where it made one
RELEASE_TAGS = (SOURCE_RUN_ID, CONFIG, PROMOTION, PROMOTION_REASON, PROMOTION_ALIAS, FORCED, SERVING_BUDGET,
                ROLLED_BACK, GIT_TAG, EVALUATION_RUN_ID, DIRTY_RELEASE, RELEASE_COMPLETE, MODEL_URI,
                RELEASE_STATUS, PROMOTION_PAIRED)  # fmt: skip


class Outcome(StrEnum):
    """What became of a trial (tag `outcome`), one word each, everywhere; the transitions are in
    `search.common.trials` (`status_of`, `outcome`)."""

    COMPLETED = "completed"  # ran every fold
    STOPPED = "stopped"  # cut short: by ASHA after a fold, or in flight by --plateau or --time-budget
    FAILED = "failed"  # its own code raised, or its actor was lost more often than Tune retries
    UNFINISHED = "unfinished"  # still RUNNING (or left by a Ctrl-C, to rerun on --resume)
    NO_RESULT = "no_result"  # closed without any score


COMPLETED, STOPPED, FAILED, UNFINISHED, NO_RESULT = Outcome
OUTCOMES = (COMPLETED, STOPPED, FAILED)  # the ended ones

# Trial metrics: scores (cross-validated on the development part), then serving cost, then bookkeeping. ROC AUC
# where the model gives scores (from probabilities or a decision function), log loss where it gives probabilities.
VAL_ACCURACY, VAL_F1, TRAIN_ACCURACY, TRAIN_F1 = "val_accuracy", "val_f1", "train_accuracy", "train_f1"
VAL_BALANCED_ACCURACY, VAL_ROC_AUC, VAL_LOG_LOSS = "val_balanced_accuracy", "val_roc_auc", "val_log_loss"
FIT_TIME_S, PREDICT_MS, MODEL_BYTES, FOLDS_DONE = "fit_time_s", "predict_ms", "model_bytes", "folds_done"
CLASSIFICATION_SCORES = (VAL_ACCURACY, VAL_F1, VAL_BALANCED_ACCURACY, VAL_ROC_AUC, VAL_LOG_LOSS)
# A regressor's: root mean squared error, mean absolute error, R², out of fold like the classifiers' scores.
VAL_RMSE, VAL_MAE, VAL_R2, TRAIN_RMSE, TRAIN_R2 = "val_rmse", "val_mae", "val_r2", "train_rmse", "train_r2"
REGRESSION_SCORES = (VAL_RMSE, VAL_MAE, VAL_R2)
VAL_SCORES = (*CLASSIFICATION_SCORES, *REGRESSION_SCORES)
SCORES = (*VAL_SCORES, TRAIN_ACCURACY, TRAIN_F1, TRAIN_RMSE, TRAIN_R2, FIT_TIME_S)
COSTS = (PREDICT_MS, MODEL_BYTES)
TRIAL_TIME_S = "trial_time_s"  # wall seconds of the trial's last attempt in its worker, fitting and scoring its folds
FIDELITY = "fidelity"  # the share of a fold's training rows the result's fit used: below 1 on a row sample
TRIAL_METRICS = (*SCORES, *COSTS, FOLDS_DONE, FIDELITY, TRIAL_TIME_S)
RANK_METRICS = VAL_SCORES  # what --metric may be (each task's own: `task_metrics`)
# The release's scores on the held-out test part (its card, the report), one for each of RANK_METRICS.
TEST_ACCURACY, TEST_F1, TEST_BALANCED_ACCURACY = "test_accuracy", "test_f1", "test_balanced_accuracy"
TEST_ROC_AUC, TEST_LOG_LOSS = "test_roc_auc", "test_log_loss"
TEST_RMSE, TEST_MAE, TEST_R2 = "test_rmse", "test_mae", "test_r2"
TEST_SCORES = (TEST_ACCURACY, TEST_F1, TEST_BALANCED_ACCURACY, TEST_ROC_AUC, TEST_LOG_LOSS, TEST_RMSE, TEST_MAE,
               TEST_R2)  # fmt: skip
TARGET_STD = "target_std"  # metric of a regression release: the test part's target spread, to judge an RMSE by
MINIMISED = (FIT_TIME_S, *COSTS, VAL_LOG_LOSS, TEST_LOG_LOSS, VAL_RMSE, VAL_MAE, TEST_RMSE, TEST_MAE, TRAIN_RMSE)
IMBALANCE = 3.0  # largest class / smallest class from which the default metric is balanced accuracy


def mode_of(metric: str) -> str:
    """`min` for a metric where lower is better (log loss, errors, costs), else `max`."""
    return "min" if metric in MINIMISED else "max"


def task_metrics(task: str) -> tuple[str, ...]:
    """The trial scores of a task, its default metric first."""
    return REGRESSION_SCORES if task == REGRESSION else CLASSIFICATION_SCORES


def task_of_metric(metric: str) -> str:
    """The task a trial or test score belongs to."""
    regression = (*REGRESSION_SCORES, TEST_RMSE, TEST_MAE, TEST_R2, TRAIN_RMSE, TRAIN_R2)
    return REGRESSION if metric in regression else CLASSIFICATION


def partner_of(metric: str) -> str:
    """The score that breaks a tie on `metric`: macro F1 for a classifier (accuracy when ranking by F1), MAE for a
    regressor (RMSE when ranking by MAE)."""
    if task_of_metric(metric) == REGRESSION:
        return VAL_MAE if metric != VAL_MAE else VAL_RMSE
    return VAL_F1 if metric != VAL_F1 else VAL_ACCURACY


def test_metric_for(metric: str) -> str:
    """The release's test-part score that matches a trial metric (`val_f1` -> `test_f1`)."""
    if metric in RANK_METRICS:
        return TEST_SCORES[RANK_METRICS.index(metric)]
    return TEST_RMSE if task_of_metric(metric) == REGRESSION else TEST_ACCURACY


# Trial params besides the model's own hyperparameters: the model family and the feature set, then the constants.
MODEL, FEATURE_SET = "model", "feature_set"
TEXT_FEATURES = "text_features"  # on a table with many-valued text: its n-gram components too, or its encoding alone
SEED, CV_FOLDS = "seed", "cv_folds"
TRIAL_CONSTANTS = (SEED, CV_FOLDS, TASK)  # `task` only on a regressor's trial: a trial without it is a classifier

# The search's parent run.
TARGET, MODELS, FEATURE_SETS, NUM_SAMPLES = "target", "models", "feature_sets", "num_samples"
MAX_CONCURRENT, TEST_SIZE, SPLIT_SEED, METRIC = "max_concurrent", "test_size", "split_seed", "metric"
SCHEDULER, OBJECTIVES, POINTS_TO_EVALUATE = "scheduler", "objectives", "points_to_evaluate"
N_DEV_ROWS, N_TEST_ROWS = "n_dev_rows", "n_test_rows"
WARM_START, PLATEAU, MIN_DELTA = "warm_start", "plateau", "min_delta"  # --warm-start, --plateau, --min-delta
TIME_BUDGET = "time_budget"  # --time-budget, in seconds (empty without)
UNTIL_BUDGET = 100_000  # the num_samples of a search that --time-budget alone ends: as many trials as fit in it
CATEGORICAL, DROP = "categorical_columns", "dropped_columns"  # --categorical, --drop: overrides of the roles
SEARCH_PARAMS = (DATASET, TARGET, TASK, MODELS, FEATURE_SETS, NUM_SAMPLES, MAX_CONCURRENT, SEED, CV_FOLDS, TEST_SIZE,
                 SPLIT_SEED, METRIC, SCHEDULER, OBJECTIVES, POINTS_TO_EVALUATE, N_DEV_ROWS, N_TEST_ROWS, WARM_START,
                 PLATEAU, MIN_DELTA, CATEGORICAL, DROP, TIME_BUDGET)  # fmt: skip
# The table's column roles as the search saw them (JSON) and why the search ranks by its metric.
COLUMN_ROLES, METRIC_REASON = "column_roles", "metric_reason"
COLUMN_ROLES_FILE = "column_roles.json"  # artifact of the parent run, when the roles do not fit in a tag
# What a search knows of earlier ones (tags of its parent run, search/searching/warm.py): its fingerprint and schema,
# the searches it learned from and the best trial it ran first, or the related search whose configurations it ran.
SEARCH_FINGERPRINT, SCHEMA_DIGEST = "search_fingerprint", "schema_digest"
WARM_START_FROM, WARM_START_TRIALS, WARM_START_BEST = "warm_start_from", "warm_start_trials", "warm_start_best"
ENQUEUED_FROM, ENQUEUED_TRIALS = "enqueued_from", "enqueued_trials"
WARM_TAGS = (SEARCH_FINGERPRINT, SCHEMA_DIGEST, WARM_START_FROM, WARM_START_TRIALS, WARM_START_BEST, ENQUEUED_FROM,
             ENQUEUED_TRIALS)  # fmt: skip
STOP_REASON = "stop_reason"  # why a search ended (tag of its parent run)
STOP_REASONS = (NUM_SAMPLES, PLATEAU, TIME_BUDGET)
BEST_VAL_ACCURACY, BEST_VAL_F1 = "best_val_accuracy", "best_val_f1"
BEST_VAL_RMSE, BEST_VAL_R2 = "best_val_rmse", "best_val_r2"  # a regression search's
TRIALS_FINISHED, TRIALS_STOPPED, TRIALS_FAILED = "trials_finished", "trials_stopped", "trials_failed"
SEARCH_METRICS = (BEST_VAL_ACCURACY, BEST_VAL_F1, BEST_VAL_RMSE, BEST_VAL_R2, TRIALS_FINISHED, TRIALS_STOPPED,
                  TRIALS_FAILED)  # fmt: skip
# Every name above that a run records, and the outcome words: spelled here and nowhere else (test_contract.py).
NAMES = frozenset({*SEARCH_PARAMS, *SEARCH_METRICS, *TRIAL_METRICS, *LINEAGE_TAGS, *NODE_TAGS, *OUTCOMES, UNFINISHED,
                   NO_RESULT, RUN_TYPE, SEARCH_ID, PARENT_RUN_ID, TRIAL_ID, TRIAL_INDEX, OUTCOME, PARETO_FRONT,
                   CONFUSION_MATRIX, *WARM_TAGS, STOP_REASON, *ELASTIC_NAMES, MODEL, FEATURE_SET, ERROR, *SEARCH_TAGS,
                   TEXT_FEATURES, *RELEASE_TAGS, COLUMN_ROLES, METRIC_REASON, TASK_REASON, PREDICTED_ACTUAL, TARGET_STD,
                   *TEST_SCORES, RECORDED_ON_RESUME})  # fmt: skip


def search_run_name(search_id: str) -> str:
    """The parent run's name: `search-<search_id>`."""
    return f"search-{search_id}"


def trial_run_name(config: dict) -> str:
    """A trial's name, in Tune and in MLflow: `0007-svm-basic` (the order the searcher proposed it, what it tries)."""
    return f"{int(config.get(TRIAL_INDEX, 0)):04d}-{config.get('model')}-{config.get('feature_set')}"
