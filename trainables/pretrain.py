"""Source-task pretraining: train an architecture on the rendered glyphs once, cache it.

The checkpoint is keyed by (architecture, source, seed) plus a short hash of the
training settings, so a later study with the same settings reuses the file instead of
retraining. Training (`train_source`) runs in a Ray task, wherever the cluster puts it;
the cache file and the MLflow record are the driver's (study.stages.pretrain), because a file
written by a task would live on whichever node ran it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from trainables.datasets.source import load_source
from trainables.loops import accuracy, make_optimizer, seeded_generator, train_steps
from trainables.registry import count_params, get_arch
from trainables.transfer import param_groups


@dataclass(frozen=True)
class PretrainSettings:
    """How a source checkpoint is trained (the study config's `source` section owns the
    defaults; `threads` is the task's CPUs, `resources.cpu_per_trial`); every field is part
    of the checkpoint's cache key."""

    source: str
    images: int
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    seed: int
    # Torch CPU threads: sums split over another number of threads add up in another order,
    # so the same settings on 2 threads give other weights than on 1 (CNN-4's differ by up
    # to 0.9 after 2 epochs, and the study's answer with them). In the key, a checkpoint is
    # reused only by a study that would have trained the same one.
    threads: int = 1

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


@dataclass(frozen=True)
class Trained:
    """What a pretraining task sends back: the checkpoint's content (CPU tensors, so a
    driver without a GPU can read it), its progress lines, and where and when it ran."""

    saved: dict
    log: list[str] = field(default_factory=list)
    node_id: str = ""
    pid: int = 0
    started: float = 0.0  # wall clock (time.time()), for the MLflow run's start and end
    finished: float = 0.0


def checkpoint_path(cache_dir: Path, arch: str, settings: PretrainSettings) -> Path:
    return Path(cache_dir) / settings.source / f"{arch}-seed{settings.seed}-{settings.key()}.pt"


def load_checkpoint(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def cached_checkpoint(path: Path) -> SourceCheckpoint | None:
    """The checkpoint cached at `path`, or None when there is none yet."""
    if not path.exists():
        return None
    return as_checkpoint(path, load_checkpoint(path))


def as_checkpoint(path: Path, saved: dict) -> SourceCheckpoint:
    return SourceCheckpoint(
        saved["arch"],
        path,
        saved["state_dict"],
        saved["num_classes"],
        saved["val_acc"],
        saved["train_seconds"],
    )


def save_checkpoint(path: Path, saved: dict) -> SourceCheckpoint:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(f".tmp{os.getpid()}")
    torch.save(saved, partial)
    partial.replace(path)  # atomic: a killed run never leaves a half-written checkpoint
    return as_checkpoint(path, saved)


def pretrain_task(arch: str, settings: PretrainSettings) -> Trained:
    """The body of one pretraining Ray task: `settings.threads` torch threads (the task's
    CPUs: more threads than cores stall when tasks share a machine), the GPU when Ray gave
    the task one, else the CPU."""
    import ray

    started = time.time()
    torch.set_num_threads(settings.threads)
    device = torch.device("cuda" if ray.get_gpu_ids() and torch.cuda.is_available() else "cpu")
    lines: list[str] = []
    saved = train_source(arch, settings, lines.append, device)
    return Trained(
        saved, lines, ray.get_runtime_context().get_node_id(), os.getpid(), started, time.time()
    )


def train_source(arch: str, settings: PretrainSettings, log=print, device=None) -> dict:
    """Train `arch` on the source task; returns the checkpoint's content (CPU tensors)."""
    device = device or torch.device("cpu")
    spec = get_arch(arch)
    torch.manual_seed(settings.seed)
    generator = seeded_generator(settings.seed, device)
    train, val, classes = load_source(settings.source, settings.images, settings.seed)
    model = spec.build(num_classes=len(classes), in_channels=train.x.shape[1]).to(device)
    steps_per_epoch = -(-len(train) // settings.batch_size)
    optimizer, scheduler = make_optimizer(
        param_groups(model, spec, settings.lr, 1.0, settings.weight_decay),
        settings.epochs * steps_per_epoch,
    )
    x, y = (t.to(device) for t in train.tensors())
    val_x, val_y = (t.to(device) for t in val.tensors())
    started = time.perf_counter()
    log(
        f"pretraining {arch} on {settings.source}: {len(train)} images, {settings.epochs} epochs, "
        f"{count_params(model):,} parameters"
    )
    for epoch in range(settings.epochs):
        loss = train_steps(
            model, optimizer, scheduler, x, y, steps_per_epoch, settings.batch_size, generator
        )
        val_acc = accuracy(model, val_x, val_y)
        log(
            f"  {arch} epoch {epoch + 1}/{settings.epochs}: loss {loss:.3f}, "
            f"source val_acc {val_acc:.3f}"
        )
    return {
        "arch": arch,
        "num_classes": len(classes),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "val_acc": val_acc,
        "train_seconds": time.perf_counter() - started,
        "settings": asdict(settings),
    }
