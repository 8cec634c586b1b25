"""The validate-and-load stage: the target dataset, read and checked on the driver.

Every image is read here, so a missing folder, an empty class, an unreadable file or a
size larger than the data stops the study with one line before any store is touched.
"""

from __future__ import annotations

from study.config.schema import StudyConfig
from study.config.target import TargetConfig
from study.errors import ConfigError
from trainables.contract import ALL
from trainables.datasets import Preprocessing, TargetData, load_target, preprocessing_for
from trainables.datasets.base import shown


def target_preprocessing(config: StudyConfig, target: TargetConfig | None = None) -> Preprocessing:
    """Inputs as the weights expect them. Study-pretrained weights come from the rendered
    glyphs: grey images normalised with their grey level (`channels: auto` is 1; 3 channels
    feed RGB to a first conv whose grey filters are spread over R, G and B). torchvision
    weights bring their own preprocessing: RGB, ImageNet's mean and std, their resize ratio.
    (Every architecture of a study shares one preprocessing, the first architecture's.)
    `target`: which of the study's targets (default: its first)."""
    target = target or config.target_list()[0]
    channels = None if target.channels == "auto" else target.channels
    if config.source.weights == "torchvision":
        from study.stages.pretrain import (
            torchvision_weights,  # MLflow: only for torchvision weights
        )

        weights = torchvision_weights(config.search.architectures[0])
        return preprocessing_for(weights, target.image_size, channels)
    return Preprocessing(size=target.image_size, channels=channels or 1)


def load_checked_targets(config: StudyConfig) -> dict[str, TargetData]:
    """Every target of the study by name (TargetConfig.key), each checked (driver side)."""
    if config.source.weights == "torchvision":
        from study.stages.pretrain import (
            check_torchvision_weights,  # MLflow: only for these weights
        )

        check_torchvision_weights(config)
    return {target.key: _load_checked(config, target) for target in config.target_list()}


def load_checked_target(config: StudyConfig) -> TargetData:
    """The target of a single-target study (its first target otherwise), checked."""
    return next(iter(load_checked_targets(config).values()))


def _load_checked(config: StudyConfig, settings: TargetConfig) -> TargetData:
    section = f"targets.{settings.key}" if config.targets is not None else "target"
    try:
        target = load_target(
            settings.dataset,
            settings.val_per_class,
            settings.test_per_class,
            prep=target_preprocessing(config, settings),
            root=settings.root,
            download=settings.download,
        )
    except ValueError as error:
        raise ConfigError(str(error)) from None
    largest = target.max_size()
    for size in settings.trial_sizes():
        if size is not None and size > largest:
            raise ConfigError(
                f"{section}.sizes: {size} examples per class is more than {shown(target.name)} has "
                f"(its training pool holds {largest} per class, class {target.smallest_class()!r}"
                f" the fewest); allowed: 1..{largest} or '{ALL}'"
            )
    return target
