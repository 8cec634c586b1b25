"""The Tune function trainable: one trial = one configuration on one training subset.

Builds the model from the registry, loads the source weights (none for `scratch`),
replaces the head, freezes the first `freeze` stages, trains a fixed number of SGD steps
with separate head and backbone learning rates, reports `val_acc` after each of
`reports` equal chunks ("epochs") with `ray.tune.report`, and finally the `test_acc` of
the weights that had the best `val_acc`. Test accuracy never steers anything here.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, fields

import torch

from trainables.data import TargetData
from trainables.loops import accuracy, make_optimizer, train_steps
from trainables.registry import count_params, get_arch
from trainables.transfer import freeze, param_groups
from trainables.weights import build_for_target


@dataclass(frozen=True)
class TrialConfig:
    arch: str
    strategy: str
    freeze: int
    lr: float
    backbone_lr_mult: float
    weight_decay: float
    size: int | None  # examples per class; None = the whole training pool
    seed: int
    steps: int
    reports: int
    batch_size: int
    weights: str  # a weight source, see trainables.weights

    @classmethod
    def from_tune(cls, config: dict) -> TrialConfig:
        names = [f.name for f in fields(cls)]
        missing = [name for name in names if name not in config]
        if missing:
            raise ValueError(f"trial config lacks {', '.join(missing)}")
        values = {name: config[name] for name in names}
        values["size"] = None if values["size"] in (None, "all") else int(values["size"])
        return cls(**values)


def build_trial_model(cfg: TrialConfig, target: TargetData, sources: dict[str, dict]):
    spec = get_arch(cfg.arch)
    model = build_for_target(
        spec, cfg.weights, target.num_classes, target.in_channels, sources.get(cfg.arch)
    )
    return spec, freeze(model, spec, cfg.freeze)


def fit(cfg: TrialConfig, target: TargetData, sources: dict[str, dict], report):
    """Train and evaluate one trial, calling `report(metrics)` after every epoch.

    Returns the model (holding the best-validation weights) and the final metrics.
    """
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

    spec, model = build_trial_model(cfg, target, sources)
    model.to(device)
    x, y = (t.to(device) for t in target.train_subset(cfg.size, cfg.seed).tensors())
    val_x, val_y = (t.to(device) for t in target.val.tensors())
    groups = param_groups(model, spec, cfg.lr, cfg.backbone_lr_mult, cfg.weight_decay)
    optimizer, scheduler = make_optimizer(groups, cfg.steps)

    started = time.perf_counter()
    best_val, best_state = -1.0, None
    chunks = [cfg.steps // cfg.reports + (i < cfg.steps % cfg.reports) for i in range(cfg.reports)]
    metrics: dict = {}
    for epoch, steps in enumerate(chunks, start=1):
        loss = train_steps(model, optimizer, scheduler, x, y, steps, cfg.batch_size, generator)
        val_acc = accuracy(model, val_x, val_y)
        if val_acc > best_val:
            best_val, best_state = val_acc, copy.deepcopy(model.state_dict())
        metrics = {
            "epoch": epoch,
            "train_loss": loss,
            "val_acc": val_acc,
            "best_val_acc": best_val,
            "train_seconds": time.perf_counter() - started,
            "trainable_params": count_params(model, trainable_only=True),
        }
        if epoch == cfg.reports:
            # test_acc only in the last report, of the weights with the best val_acc.
            model.load_state_dict(best_state)
            metrics["test_acc"] = accuracy(model, *(t.to(device) for t in target.test.tensors()))
        report(metrics)
    return model, metrics


def tune_trial(config: dict, target: TargetData, sources: dict[str, dict]) -> None:
    """The function Ray Tune runs: results go to the driver through `ray.tune.report`."""
    from ray import tune

    fit(TrialConfig.from_tune(config), target, sources, tune.report)
