"""Source-task pretraining: train an architecture on the rendered glyphs once, cache it.

The checkpoint is keyed by (architecture, source, seed) plus a short hash of the
training settings, so a later study with the same settings reuses the file instead of
retraining. Recording the run in MLflow is the driver's job (study.tracking).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from trainables.datasets.source import load_source
from trainables.loops import accuracy, make_optimizer, train_steps
from trainables.registry import count_params, get_arch
from trainables.transfer import param_groups


@dataclass(frozen=True)
class PretrainSettings:
    """How a source checkpoint is trained (the study config's `source` section owns the
    defaults); every field is part of the checkpoint's cache key."""

    source: str
    images: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int

    def key(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class SourceCheckpoint:
    arch: str
    path: Path
    state_dict: dict
    num_classes: int
    val_acc: float
    train_seconds: float
    trained_now: bool


def checkpoint_path(cache_dir: Path, arch: str, settings: PretrainSettings) -> Path:
    return Path(cache_dir) / settings.source / f"{arch}-seed{settings.seed}-{settings.key()}.pt"


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def pretrain(
    arch: str,
    settings: PretrainSettings,
    cache_dir: Path,
    log=print,
) -> SourceCheckpoint:
    """Return the cached source checkpoint for `arch`, training it first if needed."""
    path = checkpoint_path(cache_dir, arch, settings)
    if path.exists():
        saved = load_checkpoint(path)
        return SourceCheckpoint(
            arch,
            path,
            saved["state_dict"],
            saved["num_classes"],
            saved["val_acc"],
            saved["train_seconds"],
            trained_now=False,
        )

    spec = get_arch(arch)
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    train, val, classes = load_source(settings.source, settings.images, settings.seed)
    model = spec.build(num_classes=len(classes), in_channels=train.x.shape[1])
    steps_per_epoch = -(-len(train) // settings.batch_size)
    optimizer, scheduler = make_optimizer(
        param_groups(model, spec, settings.lr, 1.0, settings.weight_decay),
        settings.epochs * steps_per_epoch,
    )
    x, y = train.tensors()
    started = time.perf_counter()
    log(
        f"pretraining {arch} on {settings.source}: {len(train)} images, {settings.epochs} epochs, "
        f"{count_params(model):,} parameters"
    )
    for epoch in range(settings.epochs):
        loss = train_steps(
            model, optimizer, scheduler, x, y, steps_per_epoch, settings.batch_size, generator
        )
        val_acc = accuracy(model, *val.tensors())
        log(
            f"  {arch} epoch {epoch + 1}/{settings.epochs}: loss {loss:.3f}, "
            f"source val_acc {val_acc:.3f}"
        )
    seconds = time.perf_counter() - started
    saved = {
        "arch": arch,
        "num_classes": len(classes),
        "state_dict": model.state_dict(),
        "val_acc": val_acc,
        "train_seconds": seconds,
        "settings": asdict(settings),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(saved, partial)
    partial.replace(path)  # atomic: a killed run never leaves a half-written checkpoint
    return SourceCheckpoint(arch, path, saved["state_dict"], len(classes), val_acc, seconds, True)
