"""MLflow on the driver: the experiment, the study's parent run, one child run per trial.

Only the driver writes here; trials hand their metrics over through Ray. All names that
cross into MLflow (tags, params, metrics) are the constants below, so `study.query`
reads back exactly what this module writes.

Resume: a child run is found by its `trial_id` tag, never created twice. A trial that Ray
restarts (after a failure, or after the driver was killed and the study resumed) goes on
in its existing run, and metrics of epochs that run already has are not logged again.
The study's parent run is reused by `study run --resume`; runs of trials the killed
driver had started but Ray no longer knows are closed as KILLED (`trial_state`
`interrupted`), so no run is left RUNNING.
"""

from __future__ import annotations

import time
from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune import Callback

from study.stores import redact, reveal, sqlalchemy_url
from trainables.contract import Key, Report, is_completed

# Tags
TAG_RUN_TYPE = "run_type"  # study | trial | pretrain
TAG_STUDY = "study"
TAG_DATASET = "dataset"
TAG_PHASE = "phase"  # search | confirm
TAG_SIZE = "size"
TAG_SEED = "seed"
TAG_ARCH = "arch"
TAG_STRATEGY = "strategy"  # a registered name (search_spaces.strategies)
TAG_STRATEGY_LABEL = "strategy_label"  # freeze-b spelled with its boundary: freeze-2
TAG_FREEZE_BOUNDARY = "freeze_boundary"
TAG_FREEZE_FRAC = "freeze_frac"
TAG_TRIAL_ID = "trial_id"
TAG_TRIAL_STATE = "trial_state"  # completed | pruned | failed | interrupted
TAG_ERROR = "error"
TAG_RESTARTS = "restarts"  # times the trial was restarted from its last checkpoint
TAG_NODE_IP = "node_ip"  # where the trial ran (from its reported result)
TAG_NODE_ID = "node_id"
TAG_HOSTNAME = "hostname"
TAG_FEATURE_CACHE = "feature_cache"  # on | off: <why> (from the trial's reports)
TAG_RESUMED = "resumed"  # on the parent run: times `study run --resume` continued it
# Params: these Tune config keys, under their own names
TRIAL_PARAMS = (
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
    Key.FT_LR_MULT,
    Key.C,
    Key.KNN_K,
    Key.KNN_METRIC,
    Key.AUGMENT,
)
# Metrics: these names of the trials' reports (the completed flag is a tag, trial_state)
METRIC_VAL_ACC = Report.VAL_ACC
METRIC_TEST_ACC = Report.TEST_ACC
METRIC_TRAIN_SECONDS = Report.TRAIN_SECONDS
METRIC_TRAINABLE_PARAMS = Report.TRAINABLE_PARAMS
STEP_METRICS = (Report.VAL_ACC, Report.BEST_VAL_ACC, Report.TRAIN_LOSS)

PRETRAIN_EXPERIMENT = "source-pretraining"


def client_for(tracking_uri: str) -> MlflowClient:
    """A client on `tracking_uri`; for SQLite this creates and migrates the database.

    Call it on the driver before any trial starts: concurrent first use of a fresh
    SQLite file races in MLflow's migrations.
    """
    return MlflowClient(tracking_uri=sqlalchemy_url(tracking_uri))


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
        TAG_PHASE: config[Key.PHASE],
        TAG_DATASET: config[Key.DATASET],
        TAG_SIZE: str(config[Key.SIZE]),
        TAG_SEED: str(config[Key.SEED]),
        TAG_ARCH: config[Key.ARCH],
        TAG_STRATEGY: config[Key.STRATEGY],
        TAG_STRATEGY_LABEL: label,
        TAG_FREEZE_BOUNDARY: str(config[Key.FREEZE]),
        TAG_FREEZE_FRAC: f"{config[Key.FREEZE] / stages:.3f}",
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
        self.logged_step: dict[str, int] = {}  # last epoch logged, per trial
        self.placed: set[str] = set()  # trials whose node tags are written
        self.closed: set[str] = set()  # trials whose run was already finished

    # Ray pickles its callbacks into the experiment folder (tuner.pkl): keep the store's
    # password out of it, and reconnect from the environment on Tuner.restore.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["client"] = redact(self.client.tracking_uri)
        state["run_ids"], state["logged_step"], state["placed"], state["closed"] = (
            {},
            {},
            set(),
            set(),
        )
        return state

    def __setstate__(self, state: dict) -> None:
        state["client"] = client_for(reveal(state["client"]))
        self.__dict__.update(state)

    def find_run(self, trial_id: str):
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{self.parent_run_id}' "
            f"and tags.{TAG_TRIAL_ID} = '{trial_id}'",
            max_results=10,
        )
        return min(runs, key=lambda run: run.info.start_time) if runs else None

    def on_trial_start(self, iteration, trials, trial, **info):
        trial_id = trial.trial_id
        if trial_id in self.run_ids or trial_id in self.closed:
            return  # restarted after a failure: same run
        existing = self.find_run(trial_id)
        if existing is not None:  # a resumed study: go on in the trial's run
            if existing.info.status == "RUNNING":
                self.run_ids[trial_id] = existing.info.run_id
                history = self.client.get_metric_history(existing.info.run_id, METRIC_VAL_ACC)
                self.logged_step[trial_id] = max((m.step for m in history), default=0)
            else:
                self.closed.add(trial_id)
            return
        config = trial.config
        label = self.label_of(config[Key.STRATEGY], config[Key.FREEZE])
        tags = trial_tags(config, self.stage_counts[config[Key.ARCH]], label)
        tags |= {
            MLFLOW_PARENT_RUN_ID: self.parent_run_id,
            TAG_TRIAL_ID: trial_id,
            MLFLOW_RUN_NAME: f"{config[Key.PHASE]}-size{config[Key.SIZE]}-{config[Key.ARCH]}-"
            f"{label}-seed{config[Key.SEED]}-{trial_id}",
        }
        run = self.client.create_run(self.experiment_id, start_time=now_ms(), tags=tags)
        self.run_ids[trial_id] = run.info.run_id
        params = [Param(name, str(config[name])) for name in TRIAL_PARAMS if name in config]
        self.client.log_batch(run.info.run_id, params=params)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        step, stamp = int(result[Report.EPOCH]), now_ms()
        tags = []
        if trial.trial_id not in self.placed:
            self.placed.add(trial.trial_id)
            tags = [
                RunTag(tag, str(result[key]))
                for tag, key in (
                    (TAG_NODE_IP, "node_ip"),  # Ray adds node_ip and hostname to a result
                    (TAG_HOSTNAME, "hostname"),
                    (TAG_FEATURE_CACHE, Report.FEATURE_CACHE),
                    (TAG_NODE_ID, Report.NODE_ID),
                )
                if key in result
            ]
        if step <= self.logged_step.get(trial.trial_id, 0):
            if tags:
                self.client.log_batch(run_id, tags=tags)
            return  # an epoch this run already has (the trial resumed from a checkpoint)
        self.logged_step[trial.trial_id] = step
        metrics = [
            Metric(name, float(result[name]), stamp, step)
            for name in STEP_METRICS
            if name in result
        ]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)

    def on_trial_recover(self, iteration, trials, trial, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        self.client.log_batch(
            run_id,
            tags=[
                RunTag(TAG_RESTARTS, str(trial.num_failures)),
                RunTag(TAG_ERROR, error_line(trial)),
            ],
        )

    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        result = trial.last_result or {}
        finished = is_completed(result)
        stamp, step = now_ms(), int(result.get(Report.EPOCH, 0))
        final = [
            Metric(name, float(result[name]), stamp, step)
            for name in (METRIC_TEST_ACC, METRIC_TRAIN_SECONDS, METRIC_TRAINABLE_PARAMS)
            if name in result
        ]
        self.client.log_batch(
            run_id,
            metrics=final,
            tags=[RunTag(TAG_TRIAL_STATE, "completed" if finished else "pruned")]
            + [RunTag(TAG_FEATURE_CACHE, str(v)) for v in [result.get(Report.FEATURE_CACHE)] if v],
        )
        self.client.set_terminated(run_id, "FINISHED", end_time=stamp)

    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        self.client.log_batch(
            run_id,
            tags=[RunTag(TAG_TRIAL_STATE, "failed"), RunTag(TAG_ERROR, error_line(trial))],
        )
        self.client.set_terminated(run_id, "FAILED", end_time=now_ms())


def error_line(trial) -> str:
    """The last line of a failed trial's error (the exception and its message), from the
    error file Ray writes on the driver before it calls back."""
    text = ""
    try:
        path = trial.error_file
        if path and Path(path).is_file():
            text = Path(path).read_text(errors="replace")
    except (AttributeError, OSError):
        pass
    text = text or str(getattr(trial, "error_message", None) or "")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[-1] if lines else "trial raised")[:4000]


def child_runs(client: MlflowClient, parent_run_id: str, phase: str | None = None) -> list:
    """The trial runs of a study run (of one phase), in any state."""
    parent = client.get_run(parent_run_id)
    where = f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent_run_id}'"
    if phase is not None:
        where += f" and tags.{TAG_PHASE} = '{phase}'"
    return client.search_runs([parent.info.experiment_id], filter_string=where, max_results=50000)


def close_interrupted_runs(client: MlflowClient, parent_run_id: str) -> int:
    """Close the child runs still RUNNING at the end of a study: trials a killed driver
    had started and that the resumed Ray experiment no longer knows. Returns how many."""
    parent = client.get_run(parent_run_id)
    runs = client.search_runs(
        [parent.info.experiment_id],
        filter_string=f"tags.{MLFLOW_PARENT_RUN_ID} = '{parent_run_id}' "
        f"and attributes.status = 'RUNNING'",
        max_results=50000,
    )
    for run in runs:
        client.set_tag(run.info.run_id, TAG_TRIAL_STATE, "interrupted")
        client.set_terminated(run.info.run_id, "KILLED", end_time=now_ms())
    return len(runs)


def latest_study_run(client: MlflowClient, experiment_id: str):
    """The most recent study (parent) run in the experiment, whatever its status."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.{TAG_RUN_TYPE} = 'study'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return runs[0] if runs else None


def reopen_study_run(client: MlflowClient, run) -> str:
    """Mark a killed or failed study run RUNNING again (`study run --resume`)."""
    resumed = int(run.data.tags.get(TAG_RESUMED, "0")) + 1
    client.update_run(run.info.run_id, status="RUNNING")
    client.set_tag(run.info.run_id, TAG_RESUMED, str(resumed))
    return run.info.run_id


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
