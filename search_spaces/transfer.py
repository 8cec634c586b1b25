"""The transfer-learning search space: the strategy labels (architecture x strategy x
freeze boundary), each tuned over its own rates.

Every label (`Label`: `freeze-b` is one per boundary b) has an Optuna study of its own
(study.stages.search); its configuration is asked define-by-run (`define_label`), so a
parameter exists only where it matters: the backbone multiplier only when a pretrained
backbone is partly trained, C only for logreg/svm, k only for knn. Which strategy does
what is its registered spec (search_spaces.strategies); this module asks in the same
order for every strategy.
A categorical parameter must keep the same choices under one name, so parameters whose
meaning differs between strategies are named after them (`svm/C`, `knn/k`).

Tune config keys (what the trainable reads) are plain: `freeze`, `C`, `knn_k`, ...
(trainables.contract.Key); a key a strategy does not use is left out, and the
trainable's default applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from search_spaces.strategies import (
    FREEZE_BACKBONE,
    FREEZE_SEARCHED,
    StrategySpec,
    get_strategy,
    list_strategies,
)
from trainables.contract import Key


@dataclass(frozen=True)
class Ranges:
    """Log-uniform ranges (low, high) for the continuous parameters; int range for k."""

    lr: tuple[float, float] = (1e-3, 0.3)
    backbone_lr_mult: tuple[float, float] = (0.01, 1.0)
    weight_decay: tuple[float, float] = (1e-6, 1e-3)
    C: tuple[float, float] = (1e-3, 10.0)
    knn_k: tuple[int, int] = (1, 20)
    # Layer-wise lr decay toward the input; None: off (every backbone stage at one lr).
    layer_decay: tuple[float, float] | None = None


def define_label(trial, arch: str, strategy: str, freeze: int, ranges: Ranges = Ranges()) -> dict:
    """Suggest one configuration of a fixed (architecture, strategy, boundary): what a
    study tunes for every strategy label with a budget of its own (study.stages.search).

    The order of the suggest calls is part of the study's answer (TPE models the
    parameters it has seen, by name): the shared rates, then the strategy's own."""
    spec = get_strategy(strategy)
    config = {Key.ARCH: arch, Key.STRATEGY: strategy, Key.FREEZE: freeze}
    if spec.classical:
        # No gradient training: lr and weight decay do not apply.
        config |= {Key.LR: 0.0, Key.BACKBONE_LR_MULT: 0.0, Key.WEIGHT_DECAY: 0.0}
    else:
        config |= suggest_rates(trial, spec, ranges)
    return config | spec.suggest(trial, ranges)


@dataclass(frozen=True)
class Label:
    """One (architecture, strategy, boundary): the unit a study tunes and confirms."""

    arch: str
    strategy: str
    freeze: int

    @property
    def name(self) -> str:
        return get_strategy(self.strategy).label(self.freeze)


def labels(stages: Mapping[str, int], strategies: Sequence[str] | None = None) -> list[Label]:
    """Every (architecture, strategy label) of a search: each searched boundary 1..B-1 is
    a label of its own, so the answer covers b = 0 (finetune) through B (linear-probe)."""
    result = []
    for arch, n_stages in stages.items():
        for strategy in list_strategies() if strategies is None else strategies:
            spec = get_strategy(strategy)
            if spec.boundary == FREEZE_SEARCHED:
                result += [Label(arch, strategy, b) for b in range(1, n_stages)]
            else:
                fixed = n_stages if spec.boundary == FREEZE_BACKBONE else 0
                result.append(Label(arch, strategy, fixed))
    return result


def grid_points(strategy: str, ranges: Ranges, n: int) -> list[dict]:
    """`n` values of the strategy's main parameter (the learning rate, C or k), evenly
    spread over its range (log scale; the middle of n equal bins), as partial Optuna
    parameters to enqueue: a budget of n trials tries the whole range, not n lucky draws."""
    name, field = get_strategy(strategy).grid or ("lr", "lr")
    low, high = getattr(ranges, field)
    if isinstance(low, int) and isinstance(high, int):
        values = sorted({round(low * (high / low) ** ((i + 0.5) / n)) for i in range(n)})
    else:
        values = [low * (high / low) ** ((i + 0.5) / n) for i in range(n)]
    return [{name: value} for value in values]


def suggest_rates(trial, spec: StrategySpec, ranges: Ranges) -> dict:
    """The gradient-trained strategies' rates: the head's lr and the weight decay; the
    backbone's lr multiplier (and layer decay, when configured) where it trains."""
    rates = {
        Key.LR: trial.suggest_float("lr", *ranges.lr, log=True),
        Key.BACKBONE_LR_MULT: 1.0,
        Key.WEIGHT_DECAY: trial.suggest_float("weight_decay", *ranges.weight_decay, log=True),
    }
    if spec.backbone_lr:
        rates[Key.BACKBONE_LR_MULT] = trial.suggest_float(
            "backbone_lr_mult", *ranges.backbone_lr_mult, log=True
        )
        if ranges.layer_decay is not None:
            rates[Key.LAYER_DECAY] = trial.suggest_float(
                "layer_decay", *ranges.layer_decay, log=True
            )
    return rates
