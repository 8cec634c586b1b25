"""The study protocol: validate and load, pretrain, search, confirm, report.

Each stage has a module of its own: study.stages.load (validate and load), study.stages.pretrain
(pretrain), study.stages.search, study.stages.confirm, study.answer.report. This module runs them
in order around the study's MLflow parent run, which `--resume` reopens (study.stages.resume).
"""

from __future__ import annotations

import contextlib
import json
import time

from search_spaces.transfer import Label
from study.answer import report
from study.answer.descriptions import candidates_text, experiment_description, study_markdown
from study.answer.model import Answer
from study.answer.query import study_answer, study_confirm_rows
from study.answer.race import RaceRules
from study.config.schema import StudyConfig
from study.stages.confirm import confirm_budget, run_confirm
from study.stages.context import (
    RunContext,
    RunOptions,
    search_labels,
    stage_counts,
    study_key,
    trial_logger,
)
from study.stages.lease import lease, refuse_if_running
from study.stages.load import load_checked_targets
from study.stages.plan import planned_params
from study.stages.pretrain import pretrain_sources
from study.stages.resume import check_resume, study_to_resume
from study.stages.search import run_search, search_budget
from study.stages.similarity import measure_similarity
from study.stores.checks import check_places, check_stores
from study.stores.urls import redact, sqlite_path
from study.tracking import client as tracking
from study.tuning.runtime import ray_runtime
from study.tuning.searcher import close_running_trials
from study.tuning.tuner import trial_slots


def budget_params(config: StudyConfig, labels: list[Label]) -> dict:
    """The study run's params that say its budget (`labels`: the study's)."""
    return {
        tracking.PARAM_TUNING_BUDGET: f"{config.search.trials_per_label} trials per "
        f"({'target, ' if config.several_targets() else ''}size, architecture, strategy label); "
        f"confirmed: {candidates_text(config.search)}",
        tracking.PARAM_SEARCH_TRIALS: search_budget(config, labels),
        tracking.PARAM_CONFIRM_TRIALS: confirm_budget(config, labels),
        tracking.PARAM_RACE_RULES: RaceRules.of(config).to_json(),
    }


def open_study_run(
    client, config: StudyConfig, labels: list[Label], options: RunOptions
) -> tuple[str, str, bool]:
    """(experiment id, parent run id, already finished) of the study to run or resume
    (`options.resume`); the experiment's description says what this study asks and how
    to rerun it (`options.command`). `labels`: the study's, for its budget."""
    resume, log = options.resume, options.log
    previous = study_to_resume(client, config) if resume else None
    if previous is not None and previous.info.status == "FINISHED":
        log(
            f"study {config.name}: MLflow run {previous.info.run_id} has finished; nothing to resume"
        )
        return previous.info.experiment_id, previous.info.run_id, True
    experiment_id = tracking.ensure_experiment(client, config.name, config.stores.artifacts)
    description = experiment_description(config, options.command)
    tracking.describe_experiment(client, experiment_id, description)
    where = redact(config.stores.mlflow)
    if previous is not None:
        parent = tracking.reopen_study_run(client, previous)
        log(f"study {config.name}: resuming MLflow run {parent} in {where}")
        return experiment_id, parent, False
    if resume:
        log(f"study {config.name}: no earlier study to resume; starting a new one")
    dumped = config.model_dump(mode="json")
    params = {tracking.PARAM_CONFIG: json.dumps(dumped), **budget_params(config, labels)}
    params |= planned_params(config, log)  # `study plan`'s numbers (study.stages.plan)
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


def run_study(config: StudyConfig, run: RunOptions | None = None) -> Answer:
    """Run the whole study; returns its answer (one result per (target, size)).

    With `run.resume`, continue the experiment's latest study if it did not finish (the
    driver was killed, or it failed): same parent run, same Optuna studies, the Ray
    experiments restored from `stores.ray_results`. `run.verbose` adds a line per
    finished trial and Ray's trial table; `run.command` (how the study was started) goes
    into the experiment's description; `run.log` prints a line.
    """
    run = run or RunOptions()
    clock = PhaseClock()
    with clock.phase("load"):  # bad input stops here, before any store is touched
        targets = load_checked_targets(config)
        check_stores(config.stores)  # scheme, driver, reachability: before the first write
        check_places(config.stores)  # each file and folder it writes: there and writable
        if run.resume:  # a changed question is refused before Ray starts (seconds)
            check_resume(config)
    # Joined or started before the stores are written: a cluster that cannot hold one
    # trial stops the study here, with nothing written.
    with ray_runtime(config, run.log):
        return _run_in_runtime(config, targets, clock, run)


def _run_in_runtime(config, targets, clock: PhaseClock, options: RunOptions):
    client = tracking.client_for(config.stores.mlflow)
    refuse_if_running(client, config.name)  # one driver per study
    labels = search_labels(config)
    experiment_id, parent, finished = open_study_run(client, config, labels, options)
    if finished:
        return study_answer(client, tracking.get_run(client, parent))
    ctx = RunContext(
        config=config,
        key=study_key(config.name, parent),
        targets=targets,
        labels=labels,
        stages=stage_counts(config.search.architectures),
        client=client,
        experiment_id=experiment_id,
        parent=parent,
        log=options.log,
        verbose=options.verbose,
    )
    try:
        with lease(client, parent):
            answer = _run_stages(ctx, clock)
        describe_answer(ctx, clock, answer, trial_slots(config))
    except BaseException as error:
        close_stopped_study(ctx, error)
        raise
    tracking.end_study_run(client, parent, "FINISHED", tracking.STUDY_FINISHED)
    return answer


def _run_stages(ctx: RunContext, clock: PhaseClock) -> Answer:
    """Pretrain, similarity, search, confirm, report (stages 2-5) in the study run of
    `ctx`; the answer."""
    with clock.phase("pretrain"):  # in Ray tasks, one per architecture
        ctx.sources = pretrain_sources(ctx.config, ctx.client, ctx.log)
    with clock.phase("similarity"):  # source vs each target, in the pretrained features
        measure_similarity(ctx)
    ctx.logger = trial_logger(ctx)
    with clock.phase("search"):
        results = run_search(ctx)
    with clock.phase("confirm"):
        run_confirm(ctx, results)
    with clock.phase("report"):
        return finish_report(ctx.client, ctx.parent, ctx.log)


def describe_answer(ctx: RunContext, clock: PhaseClock, answer: Answer, slots: int) -> None:
    """Print and log the wall time per phase and the trial slots' share spent training;
    then the run's description, the answer, last, so it has every phase's wall time."""
    client, parent, log = ctx.client, ctx.parent, ctx.log
    log(clock.summary())
    trials = tracking.child_runs(client, parent)  # read once: the share and the plan's error
    share, line = clock.training_share(tracking.trials_train_seconds(trials), slots)
    log(line)
    seconds = {tracking.phase_seconds_metric(k): v for k, v in clock.seconds.items()}
    metrics = {**seconds, tracking.METRIC_TRAINING_SHARE: share}
    tracking.log_study_values(client, parent, metrics=metrics)
    report.log_plan_error(client, parent, clock.seconds, trials, log)  # planned vs taken
    tracking.describe_run(client, parent, study_markdown(tracking.get_run(client, parent), answer))


def close_stopped_study(ctx: RunContext, error: BaseException) -> None:
    """After an interruption or a failure nothing is left RUNNING: trial runs KILLED
    (`interrupted`), Optuna trials FAIL, the study run KILLED or FAILED; --resume goes on."""
    client, parent, config = ctx.client, ctx.parent, ctx.config
    interrupted = isinstance(error, KeyboardInterrupt)
    runs = tracking.close_interrupted_runs(client, parent)
    trials = 0
    if optuna_store_exists(config.stores.optuna):
        trials = close_running_trials(config.stores.optuna, ctx.key)
    state = tracking.STUDY_INTERRUPTED if interrupted else tracking.STUDY_FAILED
    tracking.end_study_run(client, parent, "KILLED" if interrupted else "FAILED", state)
    ctx.log(f"study {config.name} {state}: closed {runs} trial runs and {trials} Optuna trials")


def optuna_store_exists(url: str) -> bool:
    """False for a SQLite file not created yet (opening it would create it)."""
    path = sqlite_path(url)
    return path is None or path.is_file()


def finish_report(client, parent: str, log) -> Answer:
    """Close runs a killed driver left open, then read the answer back and log the report."""
    interrupted = tracking.close_interrupted_runs(client, parent)
    if interrupted:
        log(f"closed {interrupted} MLflow runs of trials the killed driver had started")
    rows = study_confirm_rows(client, parent)
    answer = study_answer(client, tracking.get_run(client, parent))
    report.log_report(client, parent, answer, rows)
    return answer
