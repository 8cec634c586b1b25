"""A search trial's run, written again as the confirm run it would have been.

The confirm phase's first seed is the subset the search trained each configuration on, so
the confirm trial of a configuration on that seed is the search trial itself
(study.stages.reuse). Its run is copied, not trained again: the same params, metrics
(val_acc's whole curve, the others' last values), dataset input and node tags, as a
confirm child run of the same study with the confirm phase's tags and `reused_from`
naming the search run."""

from __future__ import annotations

from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

from study.stores.signals import store_write
from study.tracking.client import child_runs
from study.tracking.names import (
    METRIC_VAL_ACC,
    TAG_CANDIDATE,
    TAG_PHASE,
    TAG_REUSED_FROM,
    TAG_TRIAL_ID,
)

# Not carried over: they name the search trial (its Ray trial, its run name) or its phase.
SEARCH_ONLY = (TAG_TRIAL_ID, MLFLOW_RUN_NAME, TAG_PHASE, TAG_CANDIDATE)


def search_runs_by_trial(client: MlflowClient, parent_run_id: str) -> dict[str, object]:
    """The study's finished search runs by their Ray trial id."""
    runs = child_runs(client, parent_run_id, phase="search", status="FINISHED")
    return {run.data.tags.get(TAG_TRIAL_ID): run for run in runs}


@store_write
def copy_as_confirm(client: MlflowClient, source, candidate: int, run_name: str) -> str:
    """Write `source` (a finished search run) again as the confirm run of its configuration,
    candidate `candidate`, named `run_name`; returns the new run's id."""
    tags = {k: v for k, v in source.data.tags.items() if k not in SEARCH_ONLY}
    tags |= {
        TAG_PHASE: "confirm",
        TAG_CANDIDATE: str(candidate),
        TAG_REUSED_FROM: source.info.run_id,
        MLFLOW_RUN_NAME: run_name,
        MLFLOW_PARENT_RUN_ID: source.data.tags[MLFLOW_PARENT_RUN_ID],
    }
    run = client.create_run(source.info.experiment_id, source.info.start_time, tags=tags)
    run_id = run.info.run_id
    curve = client.get_metric_history(source.info.run_id, METRIC_VAL_ACC)
    last = max(curve, key=lambda m: m.step, default=None)
    step, stamp = (last.step, last.timestamp) if last else (0, source.info.end_time or 0)
    client.log_batch(  # val_acc's curve whole; every other metric's last value, at its end
        run_id,
        metrics=[Metric(m.key, m.value, m.timestamp, m.step) for m in curve]
        + [
            Metric(key, value, stamp, step)
            for key, value in source.data.metrics.items()
            if key != METRIC_VAL_ACC
        ],
        params=[Param(k, v) for k, v in source.data.params.items()],
    )
    if source.inputs and source.inputs.dataset_inputs:
        client.log_inputs(run_id, datasets=list(source.inputs.dataset_inputs))
    client.set_terminated(run_id, "FINISHED", end_time=source.info.end_time)
    return run_id


@store_write
def delete_unfinished_copies(client: MlflowClient, confirm_runs: list) -> int:
    """Delete the copies a killed driver left unfinished (a copy is written again whole)."""
    unfinished = [
        run
        for run in confirm_runs
        if run.data.tags.get(TAG_REUSED_FROM) and run.info.status != "FINISHED"
    ]
    for run in unfinished:
        client.delete_run(run.info.run_id)
    return len(unfinished)
