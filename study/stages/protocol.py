"""The study protocol: validate and load, pretrain, search, confirm, report.

Each stage has a module of its own: study.stages.load (validate and load), study.stages.pretrain
(pretrain), study.stages.search, study.stages.confirm, study.answer.report. This module runs them
in order around the study's MLflow parent run, which `--resume` reopens (study.stages.resume).
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

from search_spaces.strategies import strategy_label
from study.answer import report
from study.answer.descriptions import candidates_text, experiment_description, study_markdown
from study.answer.query import study_answer, study_confirm_rows
from study.config.schema import StudyConfig
from study.stages.confirm import confirm_budget, run_confirm
from study.stages.lease import lease, refuse_if_running
from study.stages.load import load_checked_targets
from study.stages.pretrain import pretrain_sources
from study.stages.resume import study_to_resume
from study.stages.search import run_search, search_budget
from study.stages.similarity import measure_similarity
from study.stores.checks import check_stores
from study.stores.urls import redact
from study.tracking import client as tracking
from study.tracking.dataset_inputs import training_subsets
from study.tracking.trial_logger import MlflowTrialLogger
from study.tuning.runtime import ray_runtime
from study.tuning.searcher import close_running_trials
from study.tuning.tuner import trial_slots
from trainables.registry import get_arch


def open_study_run(
    client, config: StudyConfig, resume: bool, log, command: str | None = None
) -> tuple[str, str, bool]:
    """(experiment id, parent run id, already finished) of the study to run or resume;
    the experiment's description says what this study asks and how to rerun it."""
    previous = study_to_resume(client, config) if resume else None
    if previous is not None and previous.info.status == "FINISHED":
        log(
            f"study {config.name}: MLflow run {previous.info.run_id} has finished; nothing to resume"
        )
        return previous.info.experiment_id, previous.info.run_id, True
    experiment_id = tracking.ensure_experiment(client, config.name, config.stores.artifacts)
    tracking.describe_experiment(client, experiment_id, experiment_description(config, command))
    where = redact(config.stores.mlflow)
    if previous is not None:
        parent = tracking.reopen_study_run(client, previous)
        log(f"study {config.name}: resuming MLflow run {parent} in {where}")
        return experiment_id, parent, False
    if resume:
        log(f"study {config.name}: no earlier study to resume; starting a new one")
    dumped = config.model_dump(mode="json")
    budget = {
        "tuning_budget": f"{config.search.trials_per_label} trials per "
        f"({'target, ' if config.several_targets() else ''}size, architecture, strategy label); "
        f"confirmed: {candidates_text(config.search)}",
        "search_trials": search_budget(config),
        "confirm_trials": confirm_budget(config),
    }
    params = {"config": json.dumps(dumped), **budget}
    parent = tracking.start_study_run(client, experiment_id, config.name, params, config=dumped)
    log(f"study {config.name}: MLflow run {parent} in {where}")
    return experiment_id, parent, False


class PhaseClock:
    """Wall time per stage of a study, printed at its end and logged to its parent run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def phase(self, name: str):
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - started

    def training_share(self, train_seconds: float, slots: int) -> tuple[float, str]:
        """The share of the trial slots' time (slots x the search and confirm phases' wall
        time) the trials spent training, and a line that says so. What is not training
        is orchestration, idle slots waiting on the driver, and trial setup."""
        slot_seconds = slots * sum(self.seconds.get(name, 0.0) for name in ("search", "confirm"))
        share = train_seconds / slot_seconds if slot_seconds else 0.0
        return share, (
            f"trial slots spent training: {share:.0%} ({train_seconds:.0f} s of "
            f"{slots} slots x {slot_seconds / slots if slots else 0:.0f} s of search and confirm)"
        )

    def summary(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.seconds.items())
        return f"where the time went: {parts} (total {total / 60:.1f} min)"


def run_study(
    config: StudyConfig,
    log=print,
    resume: bool = False,
    verbose: bool = False,
    command: str | None = None,
) -> list[dict]:
    """Run the whole study; returns the best-freeze answer (one entry per size).

    With `resume`, continue the experiment's latest study if it did not finish (the
    driver was killed, or it failed): same parent run, same Optuna studies, the Ray
    experiments restored from `stores.ray_results`. `verbose` adds a line per finished
    trial and Ray's trial table; `command` (how the study was started) goes into the
    experiment's description.
    """
    clock = PhaseClock()
    with clock.phase("load"):  # bad input stops here, before any store is touched
        targets = load_checked_targets(config)
        check_stores(config.stores)  # scheme, driver, reachability: before the first write
    # Joined or started before the stores are written: a cluster that cannot hold one
    # trial stops the study here, with nothing written.
    with ray_runtime(config, log):
        return _run_in_runtime(config, targets, clock, log, resume, verbose, command)


def _run_in_runtime(config, targets, clock: PhaseClock, log, resume, verbose, command):
    client = tracking.client_for(config.stores.mlflow)
    refuse_if_running(client, config.name)  # one driver per study
    experiment_id, parent, finished = open_study_run(client, config, resume, log, command)
    if finished:
        return study_answer(client, client.get_run(parent))
    study_key = f"{config.name}.{parent[:8]}"
    try:
        with lease(client, parent):
            answer = _run_stages(
                config, targets, client, (experiment_id, parent), clock, log, verbose
            )
        describe_answer(client, parent, clock, answer, log, trial_slots(config))
    except BaseException as error:
        close_stopped_study(client, config, parent, study_key, error, log)
        raise
    tracking.end_study_run(client, parent, "FINISHED", "finished")
    return answer


def _run_stages(config, targets, client, run, clock, log, verbose) -> list[dict]:
    """Pretrain, similarity, search, confirm, report (stages 2-5) in study run `run`
    (experiment id, parent run id); the answer. `targets`: the loaded targets by name."""
    experiment_id, parent = run
    stages = {arch: get_arch(arch).num_stages for arch in config.search.architectures}
    with clock.phase("pretrain"):  # in Ray tasks, one per architecture
        sources = pretrain_sources(config, client, log)
    with clock.phase("similarity"):  # source vs each target, in the pretrained features
        measure_similarity(config, targets, sources, client, parent, log)
    subsets = training_subsets(config, targets)
    logger = MlflowTrialLogger(client, experiment_id, parent, stages, strategy_label, subsets)
    study_key = f"{config.name}.{parent[:8]}"
    with clock.phase("search"):
        results = run_search(config, study_key, targets, sources, logger, log, verbose)
    with clock.phase("confirm"):
        phase = (config, study_key, targets, sources, results, logger, client, parent)
        run_confirm(*phase, log, verbose)
    with clock.phase("report"):
        return finish_report(client, parent, log)


def describe_answer(client, parent: str, clock: PhaseClock, answer, log, slots: int) -> None:
    """Print and log the wall time per phase and the trial slots' share spent training;
    then the run's description, the answer, last, so it has every phase's wall time."""
    log(clock.summary())
    share, line = clock.training_share(tracking.trials_train_seconds(client, parent), slots)
    log(line)
    seconds = {f"seconds_{k}": v for k, v in clock.seconds.items()}
    metrics = {**seconds, tracking.METRIC_TRAINING_SHARE: share}
    tracking.log_study_values(client, parent, metrics=metrics)
    tracking.describe_run(client, parent, study_markdown(client.get_run(parent), answer))


def close_stopped_study(client, config, parent: str, study_key: str, error, log) -> None:
    """After an interruption or a failure nothing is left RUNNING: trial runs KILLED
    (`interrupted`), Optuna trials FAIL, the study run KILLED or FAILED; --resume goes on."""
    interrupted = isinstance(error, KeyboardInterrupt)
    runs = tracking.close_interrupted_runs(client, parent)
    trials = 0
    if optuna_store_exists(config.stores.optuna):
        trials = close_running_trials(config.stores.optuna, study_key)
    state = "interrupted" if interrupted else "failed"
    tracking.end_study_run(client, parent, "KILLED" if interrupted else "FAILED", state)
    log(f"study {config.name} {state}: closed {runs} trial runs and {trials} Optuna trials")


def optuna_store_exists(url: str) -> bool:
    """False for a SQLite file not created yet (opening it would create it)."""
    if not url.startswith("sqlite:///"):
        return True
    return Path(url.removeprefix("sqlite:///")).is_file()


def finish_report(client, parent: str, log) -> list[dict]:
    """Close runs a killed driver left open, then read the answer back and log the report."""
    interrupted = tracking.close_interrupted_runs(client, parent)
    if interrupted:
        log(f"closed {interrupted} MLflow runs of trials the killed driver had started")
    rows = study_confirm_rows(client, parent)
    answer = study_answer(client, client.get_run(parent))
    report.log_report(client, parent, answer, rows)
    return answer
