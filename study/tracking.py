"""MLflow on the driver: the experiment, the study's parent run, one child run per trial.

Only the driver writes here; trials hand their metrics over through Ray. All names that
cross into MLflow (tags, params, metrics) are the constants below, so `study.query`
reads back exactly what this module writes.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune import Callback

# Tags
TAG_RUN_TYPE = "run_type"  # study | trial | pretrain
TAG_STUDY = "study"
TAG_DATASET = "dataset"
TAG_PHASE = "phase"  # search | confirm
TAG_SIZE = "size"
TAG_SEED = "seed"
TAG_ARCH = "arch"
TAG_STRATEGY = "strategy"  # scratch | finetune | freeze-b | linear-probe
TAG_STRATEGY_LABEL = "strategy_label"  # freeze-b spelled with its boundary: freeze-2
TAG_FREEZE_BOUNDARY = "freeze_boundary"
TAG_FREEZE_FRAC = "freeze_frac"
TAG_TRIAL_ID = "trial_id"
TAG_TRIAL_STATE = "trial_state"  # completed | pruned | failed
TAG_ERROR = "error"
# Params
TRIAL_PARAMS = (
    "arch",
    "strategy",
    "freeze",
    "lr",
    "backbone_lr_mult",
    "weight_decay",
    "steps",
    "batch_size",
    "weights",
)
# Metrics
METRIC_VAL_ACC = "val_acc"
METRIC_TEST_ACC = "test_acc"
METRIC_TRAIN_SECONDS = "train_seconds"
METRIC_TRAINABLE_PARAMS = "trainable_params"
STEP_METRICS = ("val_acc", "best_val_acc", "train_loss")

PRETRAIN_EXPERIMENT = "source-pretraining"


def client_for(tracking_uri: str) -> MlflowClient:
    """A client on `tracking_uri`; for SQLite this creates and migrates the database.

    Call it on the driver before any trial starts: concurrent first use of a fresh
    SQLite file races in MLflow's migrations.
    """
    return MlflowClient(tracking_uri=tracking_uri)


def ensure_experiment(client: MlflowClient, name: str, artifacts: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(artifacts).resolve().as_uri() if "://" not in artifacts else artifacts
    return client.create_experiment(name, artifact_location=f"{location.rstrip('/')}/{name}")


def now_ms() -> int:
    return int(time.time() * 1000)


def trial_tags(config: dict, stages: int, label: str) -> dict[str, str]:
    return {
        TAG_RUN_TYPE: "trial",
        TAG_PHASE: config["phase"],
        TAG_DATASET: config["dataset"],
        TAG_SIZE: str(config["size"]),
        TAG_SEED: str(config["seed"]),
        TAG_ARCH: config["arch"],
        TAG_STRATEGY: config["strategy"],
        TAG_STRATEGY_LABEL: label,
        TAG_FREEZE_BOUNDARY: str(config["freeze"]),
        TAG_FREEZE_FRAC: f"{config['freeze'] / stages:.3f}",
    }


class MlflowTrialLogger(Callback):
    """Ray Tune callback on the driver: mirrors every trial into an MLflow child run."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        stage_counts: dict[str, int],
        label_of,
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.stage_counts = stage_counts
        self.label_of = label_of
        self.run_ids: dict[str, str] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        config = trial.config
        label = self.label_of(config["strategy"], config["freeze"])
        tags = trial_tags(config, self.stage_counts[config["arch"]], label)
        tags |= {
            MLFLOW_PARENT_RUN_ID: self.parent_run_id,
            TAG_TRIAL_ID: trial.trial_id,
            MLFLOW_RUN_NAME: f"{config['phase']}-size{config['size']}-{config['arch']}-"
            f"{label}-seed{config['seed']}-{trial.trial_id}",
        }
        run = self.client.create_run(self.experiment_id, start_time=now_ms(), tags=tags)
        self.run_ids[trial.trial_id] = run.info.run_id
        params = [Param(name, str(config[name])) for name in TRIAL_PARAMS]
        self.client.log_batch(run.info.run_id, params=params)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        step, stamp = int(result["epoch"]), now_ms()
        metrics = [
            Metric(name, float(result[name]), stamp, step)
            for name in STEP_METRICS
            if name in result
        ]
        self.client.log_batch(run_id, metrics=metrics)

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        result = trial.last_result or {}
        finished = METRIC_TEST_ACC in result  # only a trial that ran to the end reports it
        stamp, step = now_ms(), int(result.get("epoch", 0))
        final = [
            Metric(name, float(result[name]), stamp, step)
            for name in (METRIC_TEST_ACC, METRIC_TRAIN_SECONDS, METRIC_TRAINABLE_PARAMS)
            if name in result
        ]
        self.client.log_batch(
            run_id,
            metrics=final,
            tags=[RunTag(TAG_TRIAL_STATE, "completed" if finished else "pruned")],
        )
        self.client.set_terminated(run_id, "FINISHED", end_time=stamp)

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        reason = str(getattr(trial, "error_message", None) or "trial raised").strip()
        self.client.log_batch(
            run_id,
            tags=[
                RunTag(TAG_TRIAL_STATE, "failed"),
                RunTag(TAG_ERROR, reason.splitlines()[-1][:4000]),
            ],
        )
        self.client.set_terminated(run_id, "FAILED", end_time=now_ms())


def start_study_run(client: MlflowClient, experiment_id: str, study: str, params: dict) -> str:
    run = client.create_run(
        experiment_id,
        start_time=now_ms(),
        tags={TAG_RUN_TYPE: "study", TAG_STUDY: study, MLFLOW_RUN_NAME: f"study-{study}"},
    )
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    return run.info.run_id


def record_pretraining(client: MlflowClient, artifacts: str, checkpoint, settings: dict) -> str:
    """One MLflow run per source checkpoint trained, in an experiment of its own."""
    experiment_id = ensure_experiment(client, PRETRAIN_EXPERIMENT, artifacts)
    run = client.create_run(
        experiment_id,
        start_time=now_ms(),
        tags={
            TAG_RUN_TYPE: "pretrain",
            TAG_ARCH: checkpoint.arch,
            "checkpoint": str(checkpoint.path),
            MLFLOW_RUN_NAME: f"pretrain-{checkpoint.arch}",
        },
    )
    client.log_batch(
        run.info.run_id,
        params=[Param(k, str(v)) for k, v in settings.items()],
        metrics=[
            Metric("source_val_acc", checkpoint.val_acc, now_ms(), 0),
            Metric(METRIC_TRAIN_SECONDS, checkpoint.train_seconds, now_ms(), 0),
        ],
    )
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id
