"""The names this service writes to MLflow: tags (and the values it reads back from
them), params, metrics, experiments, artifacts.

`study.tracking.client` writes and reads them (and re-exports them: `tracking.TAG_SIZE`),
`study.tracking.trial_logger` writes the trial runs with them, `study.answer.query` reads them back; a
name changed here changes everywhere at once.
"""

from __future__ import annotations

from trainables.contract import Key, Report

# Tags
TAG_RUN_TYPE = "run_type"  # study | trial | pretrain
TAG_STUDY = "study"
TAG_TARGET = "target"  # the target's name (a study may have several)
TAG_DATASET = "dataset"
TAG_PHASE = "phase"  # search | confirm
TAG_SIZE = "size"
TAG_SEED = "seed"
TAG_ARCH = "arch"
TAG_STRATEGY = "strategy"  # a registered name (search_spaces.strategies)
TAG_STRATEGY_LABEL = "strategy_label"  # freeze-b spelled with its boundary: freeze-2
TAG_FREEZE_BOUNDARY = "freeze_boundary"
TAG_FREEZE_FRAC = "freeze_frac"
# confirm runs: which of the label's best search configurations (1: the best on seed 0);
# study.answer.query keeps, per label, the one with the best mean validation accuracy
TAG_CANDIDATE = "candidate"
TAG_TRIAL_ID = "trial_id"
TAG_TRIAL_STATE = "trial_state"  # completed | pruned | failed | interrupted
TAG_ERROR = "error"
TAG_RESTARTS = "restarts"  # times the trial was restarted from its last checkpoint
TAG_NODE_IP = "node_ip"  # where the trial ran (from its reported result)
TAG_NODE_ID = "node_id"
TAG_HOSTNAME = "hostname"
TAG_DEVICE = "device"  # cpu, or cuda (the GPU's name): what the trial trained on
TAG_FEATURE_CACHE = "feature_cache"  # on | off: <why> (from the trial's reports)
TAG_RESUMED = "resumed"  # on the parent run: times `study run --resume` continued it
TAG_STUDY_STATE = "study_state"  # on the parent run when it ends: finished | failed | interrupted
TAG_DRIVER = "driver"  # on the parent run: host:pid of the driver running it (study.stages.lease)
TAG_HEARTBEAT = "driver_heartbeat"  # ms since the epoch; 0 once the driver let go
TAG_CHECKPOINT = "checkpoint"  # on a pretraining run: the checkpoint file it wrote
TAG_PID = "pid"  # on a pretraining run: the process of its Ray task
# On an experiment: MLflow 3's UI opens it in its GenAI view unless it holds model training.
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = {TAG_EXPERIMENT_KIND: "custom_model_development"}
# Tag values read back: TAG_RUN_TYPE's, TAG_TRIAL_STATE's, TAG_STUDY_STATE's
RUN_STUDY, RUN_TRIAL, RUN_PRETRAIN = "study", "trial", "pretrain"
TRIAL_COMPLETED, TRIAL_PRUNED, TRIAL_FAILED = "completed", "pruned", "failed"
TRIAL_INTERRUPTED = "interrupted"  # its driver was stopped; a resumed study goes on with it
STUDY_FINISHED, STUDY_FAILED, STUDY_INTERRUPTED = "finished", "failed", "interrupted"
# Params: these Tune config keys, under their own names (size and seed are tags too; as
# params they are columns of the runs table like the rest)
TRIAL_PARAMS = (
    Key.TARGET,
    Key.SIZE,
    Key.SEED,
    Key.ARCH,
    Key.STRATEGY,
    Key.FREEZE,
    Key.LR,
    Key.BACKBONE_LR_MULT,
    Key.WEIGHT_DECAY,
    Key.STEPS,
    Key.BATCH_SIZE,
    Key.WEIGHTS,
    # Logged only where the trial's config has them (a strategy sets what it uses).
    Key.LAYER_DECAY,
    Key.C,
    Key.KNN_K,
    Key.KNN_METRIC,
    Key.AUGMENT,
    Key.OPTIMIZER,
)
# The study run's params: the whole config (also its CONFIG_ARTIFACT), the tuning budget
# (study.stages.protocol) and how similarity was measured (study.stages.similarity).
PARAM_CONFIG = "config"
PARAM_TUNING_BUDGET = "tuning_budget"
PARAM_SEARCH_TRIALS = "search_trials"
PARAM_CONFIRM_TRIALS = "confirm_trials"  # the most the confirm race may run
PARAM_RACE_RULES = "race_rules"  # how the confirm race looks and decides (answer.race)
TAG_DROPPED_AT_LOOK = "dropped_at_look"  # on a confirm run whose contender the race dropped
TAG_DROP_REASON = "drop_reason"
# On a confirm run that is its search trial (the same configuration on the same subset,
# study.stages.reuse): that run's id. It was not trained again.
TAG_REUSED_FROM = "reused_from"
BUDGET_PARAMS = (PARAM_TUNING_BUDGET, PARAM_SEARCH_TRIALS, PARAM_CONFIRM_TRIALS)
PARAM_SIMILARITY_METHOD = "similarity_method"
# The study run's plan (study.stages.plan, what `study plan` prints): planned_<what>; its
# error at the end (study.answer.plan_error) is the report's plan_error.txt.
PLANNED_PREFIX = "planned_"
PLAN_ERROR_ARTIFACT = "plan_error.txt"
# Metrics: these names of the trials' reports (the completed flag is a tag, trial_state)
METRIC_VAL_ACC = Report.VAL_ACC
METRIC_BEST_VAL_ACC = Report.BEST_VAL_ACC  # of the epochs so far; the weights tested
METRIC_TEST_ACC = Report.TEST_ACC
METRIC_TRAIN_SECONDS = Report.TRAIN_SECONDS
METRIC_TRAINABLE_PARAMS = Report.TRAINABLE_PARAMS
# The study run's: the share of its trial slots' time spent training (study.stages.protocol).
METRIC_TRAINING_SHARE = "training_share"
STEP_METRICS = (Report.VAL_ACC, Report.BEST_VAL_ACC, Report.TRAIN_LOSS)
# The study run's wall time per phase: seconds_<phase> (study.stages.protocol's PhaseClock).
PHASE_SECONDS_PREFIX = "seconds_"
METRIC_SOURCE_VAL_ACC = "source_val_acc"  # a pretraining run's, on the source task

PRETRAIN_EXPERIMENT = "source-pretraining"
DEFAULT_EXPERIMENT = "Default"  # MLflow's own, never a study's
CONFIG_ARTIFACT = "config.yaml"  # the study config, on the parent run (what --resume reads)
# On the study run: each target's similarity to the source (study.answer.similarity), per
# architecture whose pretrained features measured it, and the EMD behind it.
SIMILARITY_PREFIX, EMD_PREFIX = "similarity", "similarity_emd"


def planned_param(what: str) -> str:
    return f"{PLANNED_PREFIX}{what}"


def phase_seconds_metric(phase: str) -> str:
    return f"{PHASE_SECONDS_PREFIX}{phase}"


def parse_phase_seconds_metric(name: str) -> str | None:
    """The phase of a wall-time metric's name; None for any other metric."""
    if not name.startswith(PHASE_SECONDS_PREFIX):
        return None
    return name.removeprefix(PHASE_SECONDS_PREFIX)


def similarity_metric(target: str, arch: str) -> str:
    return f"{SIMILARITY_PREFIX}.{target}.{arch}"


def emd_metric(target: str, arch: str) -> str:
    return f"{EMD_PREFIX}.{target}.{arch}"


def parse_similarity_metric(name: str) -> tuple[str, str] | None:
    """(target, arch) of a similarity metric's name; None for any other metric."""
    parts = name.split(".")
    if len(parts) == 3 and parts[0] == SIMILARITY_PREFIX:
        return parts[1], parts[2]
    return None
