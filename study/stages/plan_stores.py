"""What a planned study puts in Ray's object store and leaves in its stores (`study plan`).

The object store: every target (as stored, uint8) and every source checkpoint go in once
per Ray experiment (tune.with_parameters: the search, and a confirm round per look of the
race), and each pretraining task
returns its checkpoint through it. The stores: rows and bytes per trial, per stratum and
per run as measured on a smoke and a similarity study's SQLite files and folders (14 and
891 runs: the difference per row); Postgres stores hold the same rows, in other bytes.
"""

from __future__ import annotations

from study.config.schema import StudyConfig
from study.stages.plan_targets import TargetFacts, weight_bytes

# MLflow, per trial run: params, tags, the latest metrics, its dataset input (2 rows);
# metric rows: 3 per report (val_acc, best_val_acc, train_loss) and 3 once.
MLFLOW_ROWS_PER_TRIAL = 14 + 20 + 6 + 2
MLFLOW_BYTES_PER_ROW = 195  # the SQLite file's growth per row, indexes included
MLFLOW_EMPTY_BYTES = 960_000  # a new store's tables and indexes
RUN_ROWS = 30  # a study or pretraining run: its params, tags and metrics
OPTUNA_ROWS_PER_TRIAL = 6  # the trial, its ~3 params, its value, ...; and 1 per report
OPTUNA_ROWS_PER_STUDY = 3
OPTUNA_BYTES_PER_ROW = 84
OPTUNA_EMPTY_BYTES = 110_000
RAY_RESULTS_BYTES_PER_TRIAL = 37_000  # its folder (params, results) and its experiment state
REPORT_BYTES = 220_000  # the report's tables, JSON and pictures; the config artifact
REPORT_BYTES_PER_CONFIRM_TRIAL = 1_900  # its rows in the report's tables and JSON


def object_store_bytes(config: StudyConfig, facts: list[TargetFacts], pretrain: list[str]) -> int:
    """Bytes put in Ray's object store over the study (every confirm round run)."""
    rounds = 1 + max(len(config.answer.looks_for(t.seeds)) for t in config.target_list())
    targets = sum(f.nbytes for f in facts)
    sources = 0
    if config.source.weights == "study":
        sources = sum(weight_bytes(arch, 52, 1) for arch in config.search.architectures)
    pretrained = sum(weight_bytes(arch, 52, 1) for arch in pretrain)
    return rounds * (targets + sources) + pretrained


def store_sizes(config: StudyConfig, plan, labels: int, pretrain: list[str]) -> dict:
    """Rows and bytes per store at the plan's expected trial count (`labels`: how many
    (architecture, strategy label) pairs; `plan`: study.stages.plan.Plan)."""
    trials = {p.name: p.trials[1] for p in plan.phases}
    trial_runs = trials.get("search", 0) + trials.get("confirm", 0)
    metric_rows = 3 * config.training.reports + 3
    mlflow_rows = trial_runs * (MLFLOW_ROWS_PER_TRIAL + metric_rows)
    mlflow_rows += RUN_ROWS * (1 + len(pretrain))
    strata = labels * len(config.target_sizes())
    per_trial = OPTUNA_ROWS_PER_TRIAL + config.training.reports
    optuna_rows = trials.get("search", 0) * per_trial + strata * OPTUNA_ROWS_PER_STUDY
    checkpoints = sum(weight_bytes(arch, 52, 1) for arch in pretrain)
    return {
        "mlflow": {
            "runs": trial_runs + 1 + len(pretrain),
            "rows": mlflow_rows,
            "bytes": MLFLOW_EMPTY_BYTES + mlflow_rows * MLFLOW_BYTES_PER_ROW,
        },
        "optuna": {
            "studies": strata,
            "rows": optuna_rows,
            "bytes": OPTUNA_EMPTY_BYTES + optuna_rows * OPTUNA_BYTES_PER_ROW,
        },
        "ray_results": {"bytes": trial_runs * RAY_RESULTS_BYTES_PER_TRIAL},
        "artifacts": {
            "bytes": REPORT_BYTES + trials.get("confirm", 0) * REPORT_BYTES_PER_CONFIRM_TRIAL
        },
        "checkpoints": {"files": len(pretrain), "bytes": checkpoints},
    }
