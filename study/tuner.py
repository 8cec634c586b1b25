"""Ray wiring: the local runtime, and the Tuners of the search and confirm phases."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import ray
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from study.config import StudyConfig
from study.searcher import FixedConfigs
from trainables.train import tune_trial

METRIC = "val_acc"
# Progress output: Ray Tune's compact periodic trial table (CLIReporter) instead of the new
# output engine, which prints a box per trial start and result.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
PROGRESS_PARAMS = {
    "size": "size",
    "seed": "seed",
    "arch": "arch",
    "strategy": "strategy",
    "freeze": "b",
    "lr": "lr",
}
PROGRESS_METRICS = {"epoch": "epoch", "val_acc": "val_acc", "test_acc": "test_acc"}


@contextlib.contextmanager
def ray_runtime(config: StudyConfig):
    """Join the cluster when RAY_ADDRESS says so; else start a local runtime in its own
    temp dir (short path: Ray's socket names must fit in 107 bytes), removed afterwards."""
    if ray.is_initialized():
        yield
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        try:
            yield
        finally:
            ray.shutdown()
        return
    temp_dir = tempfile.mkdtemp(prefix="ray-study-", dir="/tmp")
    ray.init(
        num_cpus=config.resources.num_cpus,
        _temp_dir=temp_dir,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
    )
    try:
        yield
    finally:
        ray.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def _trainable(config: StudyConfig, target, sources):
    # with_parameters puts the dataset and source checkpoints in the object store once;
    # trials fetch them from there instead of re-reading files.
    trainable = tune.with_parameters(tune_trial, target=target, sources=sources)
    resources = {"cpu": config.resources.cpu_per_trial, "gpu": config.resources.gpu_per_trial}
    return tune.with_resources(trainable, resources)


def _max_concurrent(config: StudyConfig) -> int:
    if config.resources.max_concurrent_trials:
        return config.resources.max_concurrent_trials
    cpus = ray.cluster_resources().get("CPU", 1)
    return max(1, int(cpus // config.resources.cpu_per_trial))


def _run_config(config: StudyConfig, name: str, callbacks) -> tune.RunConfig:
    return tune.RunConfig(
        name=name,
        storage_path=str(Path(config.stores.ray_results).resolve()),
        callbacks=callbacks,
        progress_reporter=tune.CLIReporter(
            parameter_columns=PROGRESS_PARAMS,
            metric_columns=PROGRESS_METRICS,
            max_report_frequency=15,
            sort_by_metric=False,
        ),
        verbose=1,
    )


def search_tuner(
    config: StudyConfig, name: str, target, sources, searcher, callbacks
) -> tune.Tuner:
    scheduler = ASHAScheduler(
        time_attr="training_iteration",
        max_t=config.training.reports,
        grace_period=min(config.search.grace_period, config.training.reports),
        reduction_factor=config.search.reduction_factor,
    )
    budget = config.search.trials_per_size * len(config.target.sizes)
    return tune.Tuner(
        _trainable(config, target, sources),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=searcher,
            scheduler=scheduler,
            num_samples=budget,
            max_concurrent_trials=_max_concurrent(config),
            reuse_actors=True,
        ),
        run_config=_run_config(config, name, callbacks),
    )


def confirm_tuner(
    config: StudyConfig, name: str, target, sources, trial_configs: list[dict], callbacks
) -> tune.Tuner:
    """Every given configuration, run to the end (no early stopping)."""
    return tune.Tuner(
        _trainable(config, target, sources),
        tune_config=tune.TuneConfig(
            metric=METRIC,
            mode="max",
            search_alg=FixedConfigs(trial_configs, metric=METRIC),
            num_samples=len(trial_configs),
            max_concurrent_trials=_max_concurrent(config),
            reuse_actors=True,
        ),
        run_config=_run_config(config, name, callbacks),
    )
