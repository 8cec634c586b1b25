"""The Ray Tune callback on the driver that mirrors every trial into an MLflow child run.

Only the driver writes MLflow; trials hand their metrics over through Ray. The names it
writes are study.tracking.client's constants, so study.answer.query reads back exactly what is written.

Resume: a child run is found by its `trial_id` tag, never created twice. A trial that Ray
restarts (after a failure, or after the driver was killed and the study resumed) goes on
in its existing run, and metrics of epochs that run already has are not logged again.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from ray.tune import Callback

from study.stores.signals import store_write
from study.stores.urls import mask_urls, reveal_urls
from study.tracking import client as t
from study.tracking.dataset_inputs import subset_key, training_input
from trainables.contract import Key, Report, is_completed


def trial_tags(config: dict, stages: int, label: str) -> dict[str, str]:
    candidate = {t.TAG_CANDIDATE: str(config[Key.CANDIDATE])} if Key.CANDIDATE in config else {}
    return candidate | {
        t.TAG_RUN_TYPE: t.RUN_TRIAL,
        t.TAG_PHASE: config[Key.PHASE],
        t.TAG_TARGET: str(config.get(Key.TARGET, "")),
        t.TAG_DATASET: config[Key.DATASET],
        t.TAG_SIZE: str(config[Key.SIZE]),
        t.TAG_SEED: str(config[Key.SEED]),
        t.TAG_ARCH: config[Key.ARCH],
        t.TAG_STRATEGY: config[Key.STRATEGY],
        t.TAG_STRATEGY_LABEL: label,
        t.TAG_FREEZE_BOUNDARY: str(config[Key.FREEZE]),
        t.TAG_FREEZE_FRAC: f"{config[Key.FREEZE] / stages:.3f}",
    }


def run_name(config: dict, label: str, trial_id: str) -> str:
    candidate = f"-candidate{config[Key.CANDIDATE]}" if Key.CANDIDATE in config else ""
    return (
        f"{config[Key.PHASE]}-{config.get(Key.TARGET, '')}-size{config[Key.SIZE]}-{config[Key.ARCH]}-"
        f"{label}{candidate}-seed{config[Key.SEED]}-{trial_id}"
    )


class MlflowTrialLogger(Callback):
    """Ray Tune callback on the driver: mirrors every trial into an MLflow child run."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        parent_run_id: str,
        stage_counts: dict[str, int],
        label_of,
        subsets: dict[str, dict[str, str]] | None = None,
    ) -> None:
        self.client = client
        # study.tracking.dataset_inputs.training_subsets: each run's training subset, logged as its
        # dataset input (plain strings, so they travel in Ray's pickle of this callback).
        self.subsets = subsets or {}
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
        state["client"] = self.client.tracking_uri
        state["run_ids"], state["logged_step"] = {}, {}
        state["placed"], state["closed"] = set(), set()
        return mask_urls(state, ("client",))

    def __setstate__(self, state: dict) -> None:
        state = reveal_urls(state, ("client",))
        state["client"] = t.client_for(state["client"])
        self.__dict__.update(state)

    def find_run(self, trial_id: str):
        runs = t.search_runs(
            self.client, [self.experiment_id], parent=self.parent_run_id, trial_id=trial_id
        )
        return min(runs, key=lambda run: run.info.start_time) if runs else None

    @store_write
    def on_trial_start(self, iteration, trials, trial, **info):
        trial_id = trial.trial_id
        if trial_id in self.run_ids or trial_id in self.closed:
            return  # restarted after a failure: same run
        existing = self.find_run(trial_id)
        if existing is not None:  # a resumed study: go on in the trial's run
            interrupted = existing.data.tags.get(t.TAG_TRIAL_STATE) == t.TRIAL_INTERRUPTED
            if interrupted:  # closed when its driver was stopped; Ray goes on with it
                self.client.update_run(existing.info.run_id, status="RUNNING")
            if existing.info.status == "RUNNING" or interrupted:
                self.run_ids[trial_id] = existing.info.run_id
                history = self.client.get_metric_history(existing.info.run_id, t.METRIC_VAL_ACC)
                self.logged_step[trial_id] = max((m.step for m in history), default=0)
            else:
                self.closed.add(trial_id)
            return
        config = trial.config
        label = self.label_of(config[Key.STRATEGY], config[Key.FREEZE])
        tags = trial_tags(config, self.stage_counts[config[Key.ARCH]], label)
        tags |= {
            MLFLOW_PARENT_RUN_ID: self.parent_run_id,
            t.TAG_TRIAL_ID: trial_id,
            MLFLOW_RUN_NAME: run_name(config, label, trial_id),
        }
        run = self.client.create_run(self.experiment_id, start_time=t.now_ms(), tags=tags)
        self.run_ids[trial_id] = run.info.run_id
        params = [Param(name, str(config[name])) for name in t.TRIAL_PARAMS if name in config]
        self.client.log_batch(run.info.run_id, params=params)
        key = subset_key(config.get(Key.TARGET, ""), config[Key.SIZE], config[Key.SEED])
        subset = self.subsets.get(key)
        if subset is not None:
            self.client.log_inputs(run.info.run_id, datasets=[training_input(subset)])

    def placement_tags(self, trial_id: str, result: dict) -> list[RunTag]:
        """Where the trial runs and whether it uses the feature cache: once per trial."""
        if trial_id in self.placed:
            return []
        self.placed.add(trial_id)
        return [
            RunTag(tag, str(result[key]))
            for tag, key in (
                (t.TAG_NODE_IP, "node_ip"),  # Ray adds node_ip and hostname to a result
                (t.TAG_HOSTNAME, "hostname"),
                (t.TAG_FEATURE_CACHE, Report.FEATURE_CACHE),
                (t.TAG_NODE_ID, Report.NODE_ID),
                (t.TAG_DEVICE, Report.DEVICE),
            )
            if key in result
        ]

    @store_write
    def on_trial_result(self, iteration, trials, trial, result, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        step, stamp = int(result[Report.EPOCH]), t.now_ms()
        tags = self.placement_tags(trial.trial_id, result)
        if step <= self.logged_step.get(trial.trial_id, 0):
            if tags:
                self.client.log_batch(run_id, tags=tags)
            return  # an epoch this run already has (the trial resumed from a checkpoint)
        self.logged_step[trial.trial_id] = step
        metrics = [
            Metric(name, float(result[name]), stamp, step)
            for name in t.STEP_METRICS
            if name in result
        ]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)

    @store_write
    def on_trial_recover(self, iteration, trials, trial, **info):
        run_id = self.run_ids.get(trial.trial_id)
        if run_id is None:
            return
        self.client.log_batch(
            run_id,
            tags=[
                RunTag(t.TAG_RESTARTS, str(trial.num_failures)),
                RunTag(t.TAG_ERROR, error_line(trial)),
            ],
        )

    @store_write
    def on_trial_complete(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        result = trial.last_result or {}
        finished = is_completed(result)
        stamp, step = t.now_ms(), int(result.get(Report.EPOCH, 0))
        final = [
            Metric(name, float(result[name]), stamp, step)
            for name in (t.METRIC_TEST_ACC, t.METRIC_TRAIN_SECONDS, t.METRIC_TRAINABLE_PARAMS)
            if name in result
        ]
        self.client.log_batch(
            run_id,
            metrics=final,
            tags=[RunTag(t.TAG_TRIAL_STATE, t.TRIAL_COMPLETED if finished else t.TRIAL_PRUNED)]
            + [
                RunTag(t.TAG_FEATURE_CACHE, str(v)) for v in [result.get(Report.FEATURE_CACHE)] if v
            ],
        )
        self.client.set_terminated(run_id, "FINISHED", end_time=stamp)

    @store_write
    def on_trial_error(self, iteration, trials, trial, **info):
        run_id = self.run_ids.pop(trial.trial_id, None)
        if run_id is None:
            return
        self.client.log_batch(
            run_id,
            tags=[
                RunTag(t.TAG_TRIAL_STATE, t.TRIAL_FAILED),
                RunTag(t.TAG_ERROR, error_line(trial)),
            ],
        )
        self.client.set_terminated(run_id, "FAILED", end_time=t.now_ms())


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
