"""What `study plan` needs to know of each target and of the pretraining: the targets'
class counts, image shapes and bytes (read here as the study's load stage reads them), and
which architectures the pretrain stage would train (the checkpoint cache checked the way
study.stages.pretrain checks it). Nothing is written.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from search_spaces.strategies import get_strategy
from study.config.schema import StudyConfig
from study.config.target import TargetConfig
from study.errors import ConfigError

# A target that cannot be read here (a cluster's data on its head) is planned with these.
ASSUMED_CLASSES = 10
ASSUMED_POOL_PER_CLASS = 1000


@dataclass(frozen=True)
class TargetFacts:
    """One target as the plan needs it."""

    key: str
    classes: int
    channels: int
    image_size: int
    pool_counts: tuple[int, ...]  # training pool examples per class
    val: int  # validation images
    test: int  # test images
    nbytes: int  # what its object-store copy holds
    augment: bool = False  # batches changed every step: no cached frozen features

    def train_images(self, size: int | None) -> int:
        """Images of a training subset of `size` per class (None: the whole pool)."""
        if size is None:
            return sum(self.pool_counts)
        return sum(min(size, count) for count in self.pool_counts)


def _facts(settings: TargetConfig, target) -> TargetFacts:
    return TargetFacts(
        key=settings.key,
        classes=target.num_classes,
        channels=target.in_channels,
        image_size=target.image_size,
        pool_counts=tuple(int(c) for c in target.class_counts()),
        val=len(target.val.y),
        test=len(target.test.y),
        nbytes=int(target.nbytes),
        augment=bool(settings.augment),
    )


def _assumed(settings: TargetConfig, config: StudyConfig, reason: str) -> tuple[TargetFacts, str]:
    channels = 3 if config.source.weights == "torchvision" else 1
    if settings.channels != "auto":
        channels = settings.channels
    classes, side = ASSUMED_CLASSES, settings.image_size
    pool = (ASSUMED_POOL_PER_CLASS,) * classes
    images = classes * (ASSUMED_POOL_PER_CLASS + settings.val_per_class + settings.test_per_class)
    facts = TargetFacts(
        settings.key,
        classes,
        channels,
        side,
        pool,
        classes * settings.val_per_class,
        classes * settings.test_per_class,
        images * channels * side * side,
        bool(settings.augment),
    )
    note = (
        f"target {settings.key} not read here ({reason}): planned with {classes} classes and "
        f"{ASSUMED_POOL_PER_CLASS} per class for 'all'"
    )
    return facts, note


def _read(config: StudyConfig, settings: TargetConfig):
    """The target as the load stage reads it (its lines to stderr: not the plan's)."""
    from study.stages.load import target_preprocessing
    from trainables.datasets import load_target

    return load_target(
        settings.dataset,
        settings.val_per_class,
        settings.test_per_class,
        prep=target_preprocessing(config, settings),
        root=settings.root,
        download=False,  # a plan downloads nothing
        log=lambda line: print(line, file=sys.stderr),
    )


def target_facts(config: StudyConfig) -> tuple[list[TargetFacts], float, list[str]]:
    """Every target's facts, the seconds reading them took (the load stage's work), and a
    note per target that could not be read here (planned with assumed numbers). A size
    larger than a target holds is the study's own error (ConfigError, exit 2)."""
    facts, notes = [], []
    started = time.perf_counter()
    for settings in config.target_list():
        try:
            target = _read(config, settings)
        except (ValueError, OSError) as error:
            fact, note = _assumed(settings, config, str(error).splitlines()[0][:200])
            facts.append(fact)
            notes.append(note)
            continue
        largest = target.max_size()
        too_big = [s for s in settings.trial_sizes() if s is not None and s > largest]
        if too_big:
            raise ConfigError(
                f"target {settings.key}: size {too_big[0]} per class is more than its "
                f"training pool holds ({largest} per class)"
            )
        facts.append(_facts(settings, target))
    return facts, time.perf_counter() - started, notes


def to_pretrain(config: StudyConfig) -> list[str]:
    """The architectures the pretrain stage would train (not in the checkpoint cache)."""
    from pathlib import Path

    from study.stages.pretrain import pretrain_settings
    from trainables.pretrain import checkpoint_path

    needs = any(get_strategy(s).needs_weights for s in config.search.strategies)
    if not needs or config.source.weights == "torchvision":
        return []
    settings = pretrain_settings(config)
    cache = Path(config.stores.checkpoints)
    return [
        arch
        for arch in config.search.architectures
        if not checkpoint_path(cache, arch, settings).exists()
    ]


def weight_bytes(arch: str, classes: int, channels: int) -> int:
    """Bytes of `arch`'s state dict (fp32), counted on the meta device."""
    import torch

    from trainables.registry import get_arch

    with torch.device("meta"):
        model = get_arch(arch).build(classes, channels)
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


def trial_memory(arch: str, image_size: int, channels: int, batch: int) -> int:
    """Bytes a trial of `arch` holds on its device, roughly: its weights, their gradients
    and two optimizer moments (fp32), and every module's output for a batch (the saved
    activations, fp32: an upper bound under bf16 autocast); counted on the meta device."""
    import torch

    from trainables.registry import get_arch

    outputs = []

    def keep(module, inputs, output):
        if isinstance(output, torch.Tensor) and not list(module.children()):
            outputs.append(output.numel())

    with torch.device("meta"):
        model = get_arch(arch).build(10, channels).eval()  # a batch of 1: BatchNorm in eval
        hooks = [m.register_forward_hook(keep) for m in model.modules()]
        with torch.no_grad():
            model(torch.empty(1, channels, image_size, image_size))
    for hook in hooks:
        hook.remove()
    weights = sum(p.numel() for p in model.parameters())
    return 4 * (4 * weights + batch * sum(outputs))
