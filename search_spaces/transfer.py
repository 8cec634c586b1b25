"""The transfer-learning search space: architecture x strategy x freeze boundary x rates.

Define-by-run (Optuna's `trial.suggest_*`), so a parameter exists only where it matters:
the freeze boundary only for `freeze-b`, the backbone multiplier only when a pretrained
backbone is partly trained. A categorical parameter must keep the same choices under one
name for the whole study, so the boundary is named per architecture (`resnet18/freeze`),
since its range differs between architectures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STRATEGIES = ("scratch", "finetune", "freeze-b", "linear-probe")
PRETRAINED_STRATEGIES = ("finetune", "freeze-b", "linear-probe")


@dataclass(frozen=True)
class Ranges:
    """Log-uniform ranges (low, high) for the continuous parameters."""

    lr: tuple[float, float] = (1e-3, 0.3)
    backbone_lr_mult: tuple[float, float] = (0.01, 1.0)
    weight_decay: tuple[float, float] = (1e-6, 1e-3)


def freeze_param(arch: str) -> str:
    return f"{arch}/freeze"


def define(
    trial,
    stages: Mapping[str, int],
    strategies: Sequence[str] = STRATEGIES,
    ranges: Ranges = Ranges(),
) -> dict:
    """Suggest one configuration. `stages` maps each architecture to its stage count."""
    arch = trial.suggest_categorical("arch", list(stages))
    strategy = trial.suggest_categorical("strategy", list(strategies))
    n_stages = stages[arch]
    if strategy == "freeze-b":
        freeze = trial.suggest_int(freeze_param(arch), 1, n_stages - 1)
    elif strategy == "linear-probe":
        freeze = n_stages
    else:
        freeze = 0
    config = {
        "arch": arch,
        "strategy": strategy,
        "freeze": freeze,
        "lr": trial.suggest_float("lr", *ranges.lr, log=True),
        "backbone_lr_mult": 1.0,
        "weight_decay": trial.suggest_float("weight_decay", *ranges.weight_decay, log=True),
    }
    if strategy in ("finetune", "freeze-b"):
        config["backbone_lr_mult"] = trial.suggest_float(
            "backbone_lr_mult", *ranges.backbone_lr_mult, log=True
        )
    return config


def strategy_label(strategy: str, freeze: int) -> str:
    """`freeze-b` becomes e.g. `freeze-2`; other strategies keep their name."""
    return f"freeze-{freeze}" if strategy == "freeze-b" else strategy


def coverage_points(stages: Mapping[str, int], strategies: Sequence[str]) -> list[dict]:
    """One partial configuration per (architecture, strategy): enqueued first so that
    every strategy is tried in every stratum before the sampler takes over."""
    return [{"arch": arch, "strategy": strategy} for arch in stages for strategy in strategies]
