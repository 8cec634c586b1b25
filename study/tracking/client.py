"""MLflow on the driver: every read and write of the tracking store goes through here.

The experiment, the study's parent run, the search for runs, the report artifacts and
the source-pretraining runs; the per-trial child runs are written by the Ray callback in
study.tracking.trial_logger with these names. Only the driver writes MLflow; trials hand their
metrics over through Ray. All names that cross into MLflow (tags, params, metrics) are
the constants of study.tracking.names, so `study.answer.query` reads back exactly what is written.
Every write is a `store_write` (study.stores.signals): a Ctrl-C or SIGTERM raises as it ends,
never half-way through it.

Resume: the study's parent run is reused by `study run --resume` (its config is the
`config.yaml` artifact); runs of trials the killed driver had started but Ray no longer
knows are closed as KILLED (`trial_state` `interrupted`), so no run is left RUNNING.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from pathlib import Path

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME, MLFLOW_RUN_NOTE
from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

from study.stores.signals import store_write
from study.stores.urls import sqlalchemy_url

# Every name that crosses into MLflow is in study.tracking.names; callers read them here too.
from study.tracking.names import *  # noqa: F403


@store_write
def client_for(tracking_uri: str) -> MlflowClient:
    """A client on `tracking_uri`; for SQLite this creates and migrates the database.

    Call it on the driver before any trial starts: concurrent first use of a fresh
    SQLite file races in MLflow's migrations.
    """
    return MlflowClient(tracking_uri=sqlalchemy_url(tracking_uri))


# MLflow logs two INFO lines on the terminal whenever it creates a database's tables.
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


@store_write
def ensure_experiment(client: MlflowClient, name: str, artifacts: str) -> str:
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = Path(artifacts).resolve().as_uri() if "://" not in artifacts else artifacts
    return client.create_experiment(
        name, artifact_location=f"{location.rstrip('/')}/{name}", tags=EXPERIMENT_KIND
    )


@store_write
def describe_experiment(client: MlflowClient, experiment_id: str, markdown: str) -> None:
    """The experiment's description in the UI (the same tag as a run's description)."""
    client.set_experiment_tag(experiment_id, MLFLOW_RUN_NOTE, markdown[:MAX_TAG_VAL_LENGTH])


@store_write
def describe_run(client: MlflowClient, run_id: str, markdown: str) -> None:
    """The run's description, shown at the top of its page."""
    client.set_tag(run_id, MLFLOW_RUN_NOTE, markdown[:MAX_TAG_VAL_LENGTH])


def get_run(client: MlflowClient, run_id: str):
    """Run `run_id` with its tags, params and metrics."""
    return client.get_run(run_id)


def study_run_name(study: str) -> str:
    """`glyphs-to-digits 2025-06-01 14:05`: which study, started when (local time)."""
    return f"{study} {time.strftime('%Y-%m-%d %H:%M')}"


def now_ms() -> int:
    return int(time.time() * 1000)


ALL_RUNS = 50000  # MLflow's largest page: "every run" for a study's child runs


def search_runs(
    client: MlflowClient,
    experiment_ids: list[str],
    *,
    run_type: str | None = None,
    parent: str | None = None,
    phase: str | None = None,
    trial_id: str | None = None,
    status: str | None = None,
    latest_only: bool = False,
) -> list:
    """Runs matching every given condition (the one place a run filter is written)."""
    conditions = [
        f"tags.{tag} = '{value}'"
        for tag, value in (
            (TAG_RUN_TYPE, run_type),
            (MLFLOW_PARENT_RUN_ID, parent),
            (TAG_PHASE, phase),
            (TAG_TRIAL_ID, trial_id),
        )
        if value is not None
    ]
    if status is not None:
        conditions.append(f"attributes.status = '{status}'")
    return client.search_runs(
        experiment_ids,
        filter_string=" and ".join(conditions),
        order_by=["attributes.start_time DESC"] if latest_only else None,
        max_results=1 if latest_only else ALL_RUNS,
    )


def trials_train_seconds(runs: list) -> float:
    """Seconds the study's trials spent training, summed over its trial `runs` (each run's
    last `train_seconds`; a failed trial has none; a confirm run copied from the search
    trained nothing)."""
    trained = (run for run in runs if TAG_REUSED_FROM not in run.data.tags)
    return sum(run.data.metrics.get(METRIC_TRAIN_SECONDS, 0.0) for run in trained)


def run_candidate(tags: dict) -> str:
    """A confirm run's candidate number (TAG_CANDIDATE); runs of studies from before
    candidates were numbered had one configuration per label: "1"."""
    return tags.get(TAG_CANDIDATE, "1")


def child_runs(
    client: MlflowClient, parent_run_id: str, phase: str | None = None, status: str | None = None
) -> list:
    """The trial runs of a study run (of one phase, in one status; default any)."""
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    return search_runs(client, [experiment_id], parent=parent_run_id, phase=phase, status=status)


@store_write
def close_interrupted_runs(client: MlflowClient, parent_run_id: str) -> int:
    """Close the child runs still RUNNING at the end of a study: trials a killed driver
    had started and that the resumed Ray experiment no longer knows. Returns how many."""
    runs = child_runs(client, parent_run_id, status="RUNNING")
    for run in runs:
        client.set_tag(run.info.run_id, TAG_TRIAL_STATE, TRIAL_INTERRUPTED)
        client.set_terminated(run.info.run_id, "KILLED", end_time=now_ms())
    return len(runs)


@store_write
def tag_dropped(client: MlflowClient, parent_run_id: str, dropped: dict[tuple, tuple]) -> None:
    """Tag the confirm runs of the contenders a race dropped: `dropped` maps (target, size,
    contender `arch label #candidate`) to (look, reason)."""
    for run in child_runs(client, parent_run_id, phase="confirm"):
        tags = run.data.tags
        name = f"{tags.get(TAG_ARCH)} {tags.get(TAG_STRATEGY_LABEL)} #{run_candidate(tags)}"
        found = dropped.get((tags.get(TAG_TARGET), tags.get(TAG_SIZE), name))
        if found is not None and TAG_DROPPED_AT_LOOK not in tags:
            client.set_tag(run.info.run_id, TAG_DROPPED_AT_LOOK, str(found[0]))
            client.set_tag(run.info.run_id, TAG_DROP_REASON, found[1])


def experiment_ids(client: MlflowClient, name: str | None = None) -> list[str]:
    """The id of experiment `name` ([] when there is none), or of every experiment."""
    if name is None:
        return [e.experiment_id for e in client.search_experiments()]
    found = client.get_experiment_by_name(name)
    return [found.experiment_id] if found is not None else []


def experiment_names(client: MlflowClient) -> list[str]:
    return [e.name for e in client.search_experiments() if e.name != DEFAULT_EXPERIMENT]


def latest_study_run(client: MlflowClient, ids: list[str], status: str | None = None):
    """The most recent study (parent) run in experiments `ids` (of `status`), or None."""
    if not ids:
        return None
    runs = search_runs(client, ids, run_type=RUN_STUDY, status=status, latest_only=True)
    return runs[0] if runs else None


@store_write
def reopen_study_run(client: MlflowClient, run) -> str:
    """Mark a killed or failed study run RUNNING again (`study run --resume`)."""
    resumed = int(run.data.tags.get(TAG_RESUMED, "0")) + 1
    client.update_run(run.info.run_id, status="RUNNING")
    client.set_tag(run.info.run_id, TAG_RESUMED, str(resumed))
    return run.info.run_id


@store_write
def start_study_run(
    client: MlflowClient,
    experiment_id: str,
    study: str,
    params: dict,
    config: dict | None = None,
) -> str:
    """The study's parent run; `config` (the study config as plain data) is stored whole
    as its `config.yaml` artifact (a parameter is cut at MLflow's length limit)."""
    run = client.create_run(
        experiment_id,
        start_time=now_ms(),
        tags={TAG_RUN_TYPE: RUN_STUDY, TAG_STUDY: study, MLFLOW_RUN_NAME: study_run_name(study)},
    )
    client.log_batch(run.info.run_id, params=[Param(k, str(v)[:6000]) for k, v in params.items()])
    if config is not None:
        client.log_text(run.info.run_id, yaml.safe_dump(config, sort_keys=False), CONFIG_ARTIFACT)
    return run.info.run_id


# MLflow draws a progress bar on the terminal for every artifact it downloads (one file).
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


def study_config(client: MlflowClient, run_id: str) -> dict | None:
    """The config a study run was started with (its `config.yaml`), or None without one."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            path = client.download_artifacts(run_id, CONFIG_ARTIFACT, folder)
        except (MlflowException, OSError):
            return None
        return yaml.safe_load(Path(path).read_text())


@store_write
def log_study_values(
    client: MlflowClient, run_id: str, params: dict | None = None, metrics: dict | None = None
) -> None:
    """Parameters and (step-0) metrics of a study run."""
    stamp = now_ms()
    client.log_batch(
        run_id,
        params=[Param(k, str(v)) for k, v in (params or {}).items()],
        metrics=[Metric(k, float(v), stamp, 0) for k, v in (metrics or {}).items()],
    )


@store_write
def end_study_run(client: MlflowClient, run_id: str, status: str, state: str = "") -> None:
    """End the study run in MLflow `status`; `state` (finished, failed, interrupted) says
    why in words, a KILLED status being also what MLflow shows for a run it lost."""
    if state:
        client.set_tag(run_id, TAG_STUDY_STATE, state)
    client.set_terminated(run_id, status)


@store_write
def set_lease(client: MlflowClient, run_id: str, driver: str, heartbeat_ms: int) -> None:
    client.log_batch(
        run_id, tags=[RunTag(TAG_DRIVER, driver), RunTag(TAG_HEARTBEAT, str(heartbeat_ms))]
    )


@store_write
def log_folder(client: MlflowClient, run_id: str, folder: Path, artifact_path: str | None) -> None:
    """Every file in `folder` as artifacts of the run, under `artifact_path` (None: the root)."""
    client.log_artifacts(run_id, str(folder), artifact_path=artifact_path)


@store_write
def record_pretraining(
    client: MlflowClient, artifacts: str, checkpoint, settings: dict, task
) -> str:
    """One MLflow run per source checkpoint trained, in an experiment of its own; its start
    and end are the Ray task's (trainables.pretrain.Trained), tagged with where it ran."""
    experiment_id = ensure_experiment(client, PRETRAIN_EXPERIMENT, artifacts)
    run = client.create_run(
        experiment_id,
        start_time=int(task.started * 1000),
        tags={
            TAG_RUN_TYPE: RUN_PRETRAIN,
            TAG_ARCH: checkpoint.arch,
            TAG_CHECKPOINT: str(checkpoint.path),
            TAG_NODE_ID: task.node_id,
            TAG_PID: str(task.pid),
            MLFLOW_RUN_NAME: f"pretrain-{checkpoint.arch}",
        },
    )
    client.log_batch(
        run.info.run_id,
        params=[Param(k, str(v)) for k, v in settings.items()],
        metrics=[
            Metric(METRIC_SOURCE_VAL_ACC, checkpoint.val_acc, now_ms(), 0),
            Metric(METRIC_TRAIN_SECONDS, checkpoint.train_seconds, now_ms(), 0),
        ],
    )
    client.set_terminated(run.info.run_id, "FINISHED", end_time=int(task.finished * 1000))
    return run.info.run_id
