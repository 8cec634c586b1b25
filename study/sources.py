"""Where a trial's starting weights come from, and the pretrain stage that makes them.

`source.weights: study` pretrains every architecture once on the source task (cached by
architecture, source, seed and settings; recorded in MLflow's `source-pretraining`
experiment) and hands the checkpoints to the trials through Ray's object store;
`source.weights: torchvision` has each trial load the architecture's ImageNet weights
from the local torch cache. A strategy that needs no source weights (scratch) starts
from random initialisation either way.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from search_spaces.strategies import get_strategy
from study import tracking
from study.config import ConfigError, StudyConfig
from trainables.pretrain import PretrainSettings, pretrain
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
    )


def pretrain_sources(config: StudyConfig, client, log=print) -> dict[str, dict]:
    """Source checkpoints for every architecture, trained once and cached."""
    needs_weights = any(get_strategy(s).needs_weights for s in config.search.strategies)
    if not needs_weights or config.source.weights == "torchvision":
        return {}  # torchvision weights: each trial loads them from the local torch cache
    settings = pretrain_settings(config)
    sources = {}
    for arch in config.search.architectures:
        checkpoint = pretrain(arch, settings, Path(config.stores.checkpoints), log=log)
        if checkpoint.trained_now:
            tracking.record_pretraining(
                client, config.stores.artifacts, checkpoint, asdict(settings)
            )
        else:
            log(
                f"source checkpoint for {arch}: {checkpoint.path} (cached, "
                f"source val_acc {checkpoint.val_acc:.3f})"
            )
        sources[arch] = checkpoint.state_dict
    return sources
