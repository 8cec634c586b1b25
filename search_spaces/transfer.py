"""The transfer-learning search space: architecture x strategy x freeze boundary x rates.

Define-by-run (Optuna's `trial.suggest_*`), so a parameter exists only where it matters:
the freeze boundary only for `freeze-b`, the backbone multiplier only when a pretrained
backbone is partly trained, C only for logreg/svm, k only for knn, the fine-tune learning
rate multiplier only for lp-ft. A categorical parameter must keep the same choices under
one name for the whole study, so parameters whose range or meaning differs between
architectures or strategies are named after them (`resnet18/freeze`, `svm/C`, `knn/k`).

Tune config keys (what the trainable reads) are plain: `freeze`, `C`, `knn_k`, ...; a key
a strategy does not use is left out, and the trainable's default applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STRATEGIES = (
    "scratch",
    "finetune",
    "freeze-b",
    "linear-probe",
    "lp-ft",
    "logreg",
    "svm",
    "knn",
)
PRETRAINED_STRATEGIES = STRATEGIES[1:]
CLASSICAL_STRATEGIES = ("logreg", "svm", "knn")
# Strategies that train some of the backbone: backbone lr multiplier, layer-wise decay.
BACKBONE_STRATEGIES = ("finetune", "freeze-b", "lp-ft")
KNN_METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class Ranges:
    """Log-uniform ranges (low, high) for the continuous parameters; int range for k."""

    lr: tuple[float, float] = (1e-3, 0.3)
    backbone_lr_mult: tuple[float, float] = (0.01, 1.0)
    weight_decay: tuple[float, float] = (1e-6, 1e-3)
    C: tuple[float, float] = (1e-3, 10.0)
    knn_k: tuple[int, int] = (1, 20)
    ft_lr_mult: tuple[float, float] = (0.01, 0.5)
    # Layer-wise lr decay toward the input; None: off (every backbone stage at one lr).
    layer_decay: tuple[float, float] | None = None


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
    elif strategy in ("linear-probe", *CLASSICAL_STRATEGIES):
        freeze = n_stages
    else:  # scratch, finetune, lp-ft (which ends with everything trainable)
        freeze = 0
    config = {"arch": arch, "strategy": strategy, "freeze": freeze}
    if strategy in CLASSICAL_STRATEGIES:
        # No gradient training: lr and weight decay do not apply.
        config |= {"lr": 0.0, "backbone_lr_mult": 0.0, "weight_decay": 0.0}
        if strategy == "knn":
            config["knn_k"] = trial.suggest_int("knn/k", *ranges.knn_k)
            config["knn_metric"] = trial.suggest_categorical("knn/metric", list(KNN_METRICS))
        else:
            config["C"] = trial.suggest_float(f"{strategy}/C", *ranges.C, log=True)
        return config
    config |= {
        "lr": trial.suggest_float("lr", *ranges.lr, log=True),
        "backbone_lr_mult": 1.0,
        "weight_decay": trial.suggest_float("weight_decay", *ranges.weight_decay, log=True),
    }
    if strategy in BACKBONE_STRATEGIES:
        config["backbone_lr_mult"] = trial.suggest_float(
            "backbone_lr_mult", *ranges.backbone_lr_mult, log=True
        )
        if ranges.layer_decay is not None:
            config["layer_decay"] = trial.suggest_float(
                "layer_decay", *ranges.layer_decay, log=True
            )
    if strategy == "lp-ft":
        config["ft_lr_mult"] = trial.suggest_float("lp-ft/ft_lr_mult", *ranges.ft_lr_mult, log=True)
    return config


def strategy_label(strategy: str, freeze: int) -> str:
    """`freeze-b` becomes e.g. `freeze-2`; other strategies keep their name."""
    return f"freeze-{freeze}" if strategy == "freeze-b" else strategy


def coverage_points(stages: Mapping[str, int], strategies: Sequence[str]) -> list[dict]:
    """One partial configuration per (architecture, strategy): enqueued first so that
    every strategy is tried in every stratum before the sampler takes over. Strategy by
    strategy, so a budget smaller than archs x strategies still tries every strategy."""
    return [{"arch": arch, "strategy": strategy} for strategy in strategies for arch in stages]
