"""Where a trial's starting weights come from, and the pretrain stage that makes them.

`source.weights: study` pretrains every architecture once on the source task, each in a
Ray task of its own (cached by architecture, source, seed and settings; recorded in
MLflow's `source-pretraining` experiment) and hands the checkpoints to the trials through
Ray's object store;
`source.weights: torchvision` has each trial load the architecture's ImageNet weights
from the local torch cache. A strategy that needs no source weights (scratch) starts
from random initialisation either way.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import ray

from search_spaces.strategies import get_strategy
from study.config.schema import StudyConfig
from study.errors import ConfigError
from study.tracking import client as tracking
from trainables.loops import cpu_threads
from trainables.pretrain import (
    PretrainSettings,
    Trained,
    cached_checkpoint,
    checkpoint_path,
    pretrain_task,
    save_checkpoint,
)
from trainables.registry import get_arch


def torchvision_weights(arch: str) -> str:
    """The weight source of `arch` under `source.weights: torchvision` (its first enum)."""
    return f"torchvision:{get_arch(arch).torchvision_weights[0]}"


def check_torchvision_weights(config: StudyConfig) -> None:
    """Every architecture has torchvision weights, and they are in the local torch cache."""
    from trainables.weights import WeightsNotCached, torchvision_cache_file, torchvision_state

    for arch in config.search.architectures:
        if not get_arch(arch).torchvision_weights:
            raise ConfigError(
                f"search.architectures: {arch} has no torchvision weights, which "
                f"source.weights: torchvision needs; use source.weights: study for it"
            )
        name = torchvision_weights(arch).partition(":")[2]
        if not torchvision_cache_file(name).is_file():
            try:  # the loader's own message says how to fetch the file
                torchvision_state(name)
            except WeightsNotCached as error:
                raise ConfigError(str(error)) from None


def weights_for(strategy: str, arch: str, source: str, torchvision: bool = False) -> str:
    """The weight source a trial of `strategy` on `arch` starts from (trainables.weights)."""
    if not get_strategy(strategy).needs_weights:
        return "none"
    if torchvision:
        return torchvision_weights(arch)
    return f"study:{source}"


def pretrain_settings(config: StudyConfig) -> PretrainSettings:
    src = config.source
    return PretrainSettings(
        source=src.dataset,
        images=src.images,
        epochs=src.epochs,
        batch_size=src.batch_size,
        lr=src.lr,
        weight_decay=src.weight_decay,
        seed=src.seed,
        threads=cpu_threads(config.resources.cpu_per_trial),
    )


def pretrain_sources(config: StudyConfig, client, log=print) -> dict[str, dict]:
    """Source checkpoints for every architecture, trained once and cached.

    Needs the Ray runtime (study.tuning.runtime.ray_runtime): every architecture not in the cache
    trains in a Ray task of its own, all at once, with a trial's resources (a GPU where
    trials get one). The driver writes the cache file from what a task returns, so the
    cache sits where the driver runs, whichever node trained the weights.
    """
    needs_weights = any(get_strategy(s).needs_weights for s in config.search.strategies)
    if not needs_weights or config.source.weights == "torchvision":
        return {}  # torchvision weights: each trial loads them from the local torch cache
    settings = pretrain_settings(config)
    cache_dir = Path(config.stores.checkpoints)
    sources, running = {}, {}
    for arch in config.search.architectures:
        checkpoint = cached_checkpoint(checkpoint_path(cache_dir, arch, settings))
        if checkpoint is None:
            running[launch_pretraining(config, arch, settings)] = arch
            continue
        log(
            f"source checkpoint for {arch}: {checkpoint.path} (cached, "
            f"source val_acc {checkpoint.val_acc:.3f})"
        )
        sources[arch] = checkpoint.state_dict
    while running:  # in the order they finish
        [done], _ = ray.wait(list(running), num_returns=1)
        arch = running.pop(done)
        trained: Trained = ray.get(done)
        for line in trained.log:
            log(line)
        checkpoint = save_checkpoint(checkpoint_path(cache_dir, arch, settings), trained.saved)
        tracking.record_pretraining(
            client, config.stores.artifacts, checkpoint, asdict(settings), trained
        )
        log(
            f"source checkpoint for {arch}: {checkpoint.path} (trained in "
            f"{checkpoint.train_seconds:.0f} s, source val_acc {checkpoint.val_acc:.3f})"
        )
        sources[arch] = checkpoint.state_dict
    return {arch: sources[arch] for arch in config.search.architectures}


def launch_pretraining(config: StudyConfig, arch: str, settings: PretrainSettings):
    """One pretraining Ray task with a trial's resources; returns its object ref."""
    task = ray.remote(pretrain_task).options(
        num_cpus=config.resources.cpu_per_trial,
        num_gpus=config.resources.gpu_per_trial,
        name=f"pretrain-{arch}",
    )
    return task.remote(arch, settings)
