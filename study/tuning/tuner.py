"""Ray wiring: the local runtime, and the Tuners of the search and confirm phases.

Fault tolerance: trials checkpoint every `fault_tolerance.checkpoint_every` reports (the
best `keep_checkpoints` by validation accuracy are kept, and always the latest); a trial
that fails is restarted from its latest checkpoint up to `max_failures` times, then it
is marked failed and the study goes on. Resume: a phase whose experiment folder already
exists under `stores.ray_results` (the names carry the study's parent run id) is
restored with `Tuner.restore` instead of started afresh: finished trials stay finished,
unfinished ones continue from their latest checkpoint, errored ones stay errored.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import ray
from ray import tune
from ray.air.constants import EXPR_PROGRESS_FILE, EXPR_RESULT_FILE
from ray.tune.schedulers import ASHAScheduler
from ray.tune.utils.util import warn_if_slow

from study.config.schema import StudyConfig
from study.tuning.moved import alias_old_paths
from study.tuning.scheduler import PerStratumScheduler
from study.tuning.searcher import FixedConfigs
from trainables.contract import Key, Report
from trainables.train import tune_trial

METRIC = Report.VAL_ACC
# Progress output is study.tuning.progress's; with `study run --verbose` also Ray Tune's compact
# periodic trial table (CLIReporter), never the new output engine, which prints a box per
# trial start and result.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Trials checkpoint every few reports, and Ray snapshots the experiment state every
# `keep_checkpoints` trial checkpoints; frequent snapshots are what resume wants, so
# Ray's warning about them is off.
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
# Ray Tune warns when the driver spends over 0.5 s on one result and advises reporting less
# often; here that time is the driver's store writes (an MLflow run, an Optuna tell) on a
# busy machine, a few times a study, and trials report 4 times only: warn past 5 s. Its
# TUNE_WARN_THRESHOLD_S is read once, when ray.tune is imported, so a user's still wins.
warn_if_slow.DEFAULT_THRESHOLD = float(os.environ.get("TUNE_WARN_THRESHOLD_S", 5))
# Config keys and report names -> column titles.
PROGRESS_PARAMS = {
    Key.SIZE: "size",
    Key.SEED: "seed",
    Key.ARCH: "arch",
    Key.STRATEGY: "strategy",
    Key.FREEZE: "b",
    Key.LR: "lr",
}
PROGRESS_METRICS = {
    Report.EPOCH: "epoch",
    Report.VAL_ACC: "val_acc",
    Report.TEST_ACC: "test_acc",
}


def _trainable(config: StudyConfig, targets, sources):
    # with_parameters puts the datasets (every target of the study, by name: a trial picks
    # its own) and source checkpoints in the object store once; trials fetch them from
    # there instead of re-reading files.
    trainable = tune.with_parameters(
        tune_trial,
        targets=targets,
        sources=sources,
        checkpoint_every=config.fault_tolerance.checkpoint_every,
        checkpoint_after_s=config.fault_tolerance.checkpoint_after_s,
    )
    resources = {"cpu": config.resources.cpu_per_trial, "gpu": config.resources.gpu_per_trial}
    return tune.with_resources(trainable, resources)


def trial_slots(config: StudyConfig) -> int:
    """Trials that run at once: `max_concurrent_trials`, else as many as the cluster's CPUs
    hold and, for trials on GPUs, its GPUs (8 trials at 0.125 of the one GPU of a 16-CPU
    machine, not 16)."""
    if config.resources.max_concurrent_trials:
        return config.resources.max_concurrent_trials
    have = ray.cluster_resources()
    return max(1, config.resources.trials_held(have.get("CPU", 1), have.get("GPU", 0)))


class DropFinishedCheckpoints(tune.Callback):
    """Deletes a trial's checkpoints once it has finished: only a restart of an unfinished
    trial reads them, and a study of hundreds of trials would otherwise keep gigabytes.
    (Local storage only; failed trials keep theirs.)"""

    def on_trial_complete(self, iteration, trials, trial, **info):
        try:
            if trial.storage.storage_filesystem.type_name != "local":
                return
            folder = Path(trial.path)
        except AttributeError:  # another Ray version: leave them to Ray
            return
        for checkpoint in folder.glob("checkpoint_*"):
            shutil.rmtree(checkpoint, ignore_errors=True)


def experiment_path(config: StudyConfig, name: str) -> Path:
    return Path(config.stores.ray_results).resolve() / name


def trial_table(verbose: bool):
    """Ray's periodic trial table, only with `verbose` (it is about 650 lines for the
    default study); else nothing of Ray's, study.tuning.progress prints the progress."""
    if not verbose:
        return None
    return tune.CLIReporter(
        parameter_columns=PROGRESS_PARAMS,
        metric_columns=PROGRESS_METRICS,
        max_report_frequency=15,
        sort_by_metric=False,
    )


def run_config(config: StudyConfig, name: str, callbacks, verbose: bool = False) -> tune.RunConfig:
    faults = config.fault_tolerance
    return tune.RunConfig(
        name=name,
        storage_path=str(Path(config.stores.ray_results).resolve()),
        callbacks=[*callbacks, DropFinishedCheckpoints()],
        failure_config=tune.FailureConfig(max_failures=faults.max_failures),
        checkpoint_config=tune.CheckpointConfig(
            num_to_keep=faults.keep_checkpoints,
            checkpoint_score_attribute=METRIC,
            checkpoint_score_order="max",
        ),
        progress_reporter=trial_table(verbose),
        verbose=1 if verbose else 0,
    )


def _unreported_trial_folders(path: Path) -> list[Path]:
    """The trial folders of the experiment's newest snapshot that Ray reads results from
    on restore (a trial with a `last_result`, `{}` for one that started and never
    reported) and that hold neither result file. Read as Ray's ExperimentAnalysis reads it."""
    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint
    from ray.tune.experiment import Trial
    from ray.tune.utils.serialization import _loads_with_cloudpickle

    state_file = _find_newest_experiment_checkpoint(str(path))
    if state_file is None:
        return []
    folders = []
    for trial_state, run_metadata in _loads_with_cloudpickle(Path(state_file).read_text())[
        "trial_data"
    ]:
        trial = Trial.from_json_state(trial_state, stub=True)
        trial.restore_run_metadata(run_metadata)
        folder = path / trial.storage.trial_dir_name
        results = (folder / EXPR_RESULT_FILE, folder / EXPR_PROGRESS_FILE)
        if trial.last_result is not None and not any(f.exists() for f in results):
            folders.append(folder)
    return folders


def reconcile_unreported_trials(path: Path) -> None:
    """Before a restore: an empty result file in each trial folder the interrupted driver
    left without one, which Ray reads as what it is, a trial with no results yet.

    A trial's results reach its folder under `stores.ray_results` when the driver syncs
    its staging folder (in the local runtime's temporary Ray folder, deleted at exit); a
    Ctrl-C or SIGTERM between a trial's start and that sync leaves the snapshot naming a
    started trial whose folder is empty. `Tuner.restore` (its ExperimentAnalysis of the
    experiment as left) then printed "Failed to fetch metrics for N trial(s) ...
    FileNotFoundError", though the resumed phase is right: those trials run again and
    their real results replace the empty file. Quiet, and never in the way of a resume:
    a snapshot this cannot read is left to Ray as it is."""
    try:
        folders = _unreported_trial_folders(path)
    except Exception:  # another Ray version's snapshot: Ray restores it, noise and all
        return
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / EXPR_RESULT_FILE).touch()


def restored(config: StudyConfig, name: str, trainable) -> tune.Tuner | None:
    """The phase's Tuner restored from its experiment folder, or None for a fresh start.

    Ray restores the searcher, scheduler and callbacks it pickled when the phase began
    (the searcher then reconciles itself with Optuna's storage; the MLflow callback
    finds its runs by trial id).
    """
    path = experiment_path(config, name)
    if not tune.Tuner.can_restore(path):
        return None
    alias_old_paths()  # a phase pickled before study/ had rooms names the old modules
    reconcile_unreported_trials(path)
    return tune.Tuner.restore(
        str(path), trainable=trainable, resume_unfinished=True, resume_errored=False
    )


def early_stopping(config: StudyConfig) -> PerStratumScheduler | None:
    """ASHA inside each stratum when the config asks for it; else every trial runs to the
    end (None: Ray's first-in-first-out scheduler), which keeps a study reproducible."""
    if not config.search.early_stopping:
        return None
    return PerStratumScheduler(
        lambda: ASHAScheduler(
            time_attr="training_iteration",
            max_t=config.training.reports,
            grace_period=min(config.search.grace_period, config.training.reports),
            reduction_factor=config.search.reduction_factor,
        ),
        key=Key.STRATUM,
    )


def search_tuner(
    config: StudyConfig, name: str, targets, sources, searcher, callbacks, verbose: bool = False
) -> tune.Tuner:
    """The search phase's trials, handed out by `searcher`; ASHA only with early_stopping."""
    tune_config = dict(
        search_alg=searcher, scheduler=early_stopping(config), num_samples=searcher.total_budget()
    )
    return _tuner(config, name, (targets, sources), callbacks, verbose, tune_config)


def confirm_tuner(
    config: StudyConfig,
    name: str,
    targets,
    sources,
    trial_configs: list[dict],
    callbacks,
    verbose: bool = False,
) -> tune.Tuner:
    """Every given configuration, run to the end (no early stopping)."""
    tune_config = dict(
        search_alg=FixedConfigs(trial_configs, metric=METRIC), num_samples=len(trial_configs)
    )
    return _tuner(config, name, (targets, sources), callbacks, verbose, tune_config)


def _tuner(config, name: str, data, callbacks, verbose: bool, tune_config: dict) -> tune.Tuner:
    """The experiment `name` restored from `stores.ray_results` when it exists (resume),
    else a new Tuner with `tune_config` on the study's trainable and trial slots."""
    trainable = _trainable(config, *data)
    tuner = restored(config, name, trainable)
    if tuner is not None:
        return tuner
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            max_concurrent_trials=trial_slots(config),
            reuse_actors=True,
            **tune_config,
        ),
        run_config=run_config(config, name, callbacks, verbose),
    )
