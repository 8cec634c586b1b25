"""The strategy registry: what a strategy is, in one registered `StrategySpec` each.

A spec says where the freeze boundary sits (fixed at 0, each of 1..B-1 a label of its
own, or the whole backbone B), which parameters the strategy suggests beyond the shared
ones, how it trains (a phase plan, or a classical head on frozen features), whether it
starts from source weights, and how it is labelled in the answer. The search space
(`search_spaces.transfer.labels`, `define_label`), the trainable (its phase plan and
classical dispatch), the study config's allowed names, the weight choice of a trial and
the tracking label all read it, and so does the answer (study.answer: a strategy's family,
whether it is the from-scratch baseline, whether it is drawn by freeze boundary), so
adding a strategy is one `register(...)` here.

Why here, in search_spaces: a spec is data and pure functions (no torch, like the rest
of this package), and most of it is search space: the boundary rule, the Optuna
parameter names and the order they are suggested in. The trainable reads only its phase
plan and the classical flag; putting the registry on the trainable's side instead would
put Optuna's parameter names inside the trial code. Like the architecture registry
(trainables.registry): a duplicate name raises, an unknown name raises a ValueError
listing the registered ones. Registration order is the default `search.strategies`
order, which orders the labels, numbers their Optuna studies and so seeds their samplers
(study.stages.search.make_searcher): append, never reorder, or a rerun's answer changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from trainables.contract import Key, TrialConfig

if TYPE_CHECKING:
    from search_spaces.transfer import Ranges

# Where the freeze boundary b of a strategy sits, for an architecture with B stages.
FREEZE_NONE = "none"  # b = 0: everything trains
FREEZE_SEARCHED = "searched"  # every b in 1..B-1, each a label of its own (freeze-b)
FREEZE_BACKBONE = "backbone"  # b = B: the whole backbone frozen, only a head learns
BOUNDARIES = (FREEZE_NONE, FREEZE_SEARCHED, FREEZE_BACKBONE)

KNN_METRICS = ("euclidean", "cosine")

# The answer's one family of every classical head (StrategySpec.family).
CLASSICAL_FAMILY = "classical head"


@dataclass(frozen=True)
class Phase:
    """A stretch of a trial's SGD steps at one freeze boundary, with its own optimizer."""

    name: str
    steps: int
    boundary: int
    lr: float
    backbone_lr_mult: float
    layer_decay: float


PhasePlan = Callable[[TrialConfig, int], list[Phase]]  # (config, stages of its arch)
Suggest = Callable[[Any, "Ranges"], dict]  # (Optuna trial, ranges) -> config entries


def no_parameters(trial, ranges: Ranges) -> dict:
    return {}


@dataclass(frozen=True)
class StrategySpec:
    """Everything the service needs to know about one strategy.

    `phases` plans a gradient-trained strategy's steps; None means a classical head fitted
    on the frozen network's pooled features (which needs `boundary` FREEZE_BACKBONE).
    `suggest` adds the strategy's own parameters after the shared ones (lr, weight decay,
    and with `backbone_lr` the backbone's lr multiplier and layer decay: only where some
    of a pretrained backbone trains). `needs_weights`: False trains from random weights.
    `probed_head`: the new head starts as a linear probe of the frozen network (a logistic
    regression fitted to convergence, trainables.classical.probe_head), not at random.
    """

    name: str
    boundary: str
    phases: PhasePlan | None
    suggest: Suggest = no_parameters
    backbone_lr: bool = False
    needs_weights: bool = True
    # The parameter a tuning budget spreads evenly over its range first (Optuna name,
    # Ranges field); None: the shared learning rate `lr`.
    grid: tuple[str, str] | None = None
    probed_head: bool = False

    @property
    def classical(self) -> bool:
        return self.phases is None

    # How the answer (study.answer) groups, compares and draws the strategy.

    @property
    def family(self) -> str:
        """Its family in the answer: its name; the classical heads are one family."""
        return CLASSICAL_FAMILY if self.classical else self.name

    @property
    def family_title(self) -> str:
        """The family as the size picture names its best member: `freeze-b (best b)`
        where the family is a searched boundary's labels, `classical head (best)`."""
        if self.classical:
            return f"{CLASSICAL_FAMILY} (best)"
        return f"{self.name} (best b)" if self.boundary == FREEZE_SEARCHED else self.name

    @property
    def from_scratch(self) -> bool:
        """No source weights: the baseline the pretraining gain is measured against."""
        return not self.needs_weights

    @property
    def fixed_boundary(self) -> bool:
        """Its trial trains the network from the source weights and a new head at one
        freeze boundary b throughout: its accuracy at b is what freezing up to b is worth
        (the picture by boundary, the best freeze fraction). Not scratch (nothing to
        freeze), a probed head (fitted on the whole frozen backbone first) or a
        classical head (no network trains)."""
        return not self.classical and self.needs_weights and not self.probed_head

    @property
    def sweep(self) -> PhasePlan | None:
        """Which curve by boundary b a fixed-boundary strategy is a point of, its phase
        plan: the ones with the same plan differ in b only (fine-tune all at 0, freeze-b
        at 1..B-1, linear probe at B are one curve); None for the others."""
        return self.phases if self.fixed_boundary else None

    def label(self, freeze: int) -> str:
        """The name the answer ranks: a searched boundary is spelled out, since each one
        is a different way to transfer (`freeze-b` at 2 is `freeze-2`)."""
        if self.boundary != FREEZE_SEARCHED:
            return self.name
        return f"{self.name.removesuffix('-b')}-{freeze}"


_REGISTRY: dict[str, StrategySpec] = {}


def register(spec: StrategySpec) -> StrategySpec:
    if spec.name in _REGISTRY:
        raise ValueError(f"strategy {spec.name!r} is already registered")
    if spec.boundary not in BOUNDARIES:
        raise ValueError(
            f"`boundary` of strategy {spec.name!r} must be one of {', '.join(BOUNDARIES)}, "
            f"got {spec.boundary!r}"
        )
    if spec.classical and spec.probed_head:
        raise ValueError(
            f"strategy {spec.name!r} fits a classical head: it has no network head to probe"
        )
    if spec.classical and spec.boundary != FREEZE_BACKBONE:
        raise ValueError(
            f"a classical head fits on the whole frozen backbone: `boundary` of strategy "
            f"{spec.name!r} must be {FREEZE_BACKBONE}, got {spec.boundary!r}"
        )
    _REGISTRY[spec.name] = spec
    return spec


def get_strategy(name: str) -> StrategySpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        registered = ", ".join(_REGISTRY)
        raise ValueError(f"unknown strategy {name!r}; registered: {registered}") from None


def list_strategies() -> tuple[str, ...]:
    """Every registered name, in registration order (the default `search.strategies`)."""
    return tuple(_REGISTRY)


def classical_strategies() -> tuple[str, ...]:
    return tuple(name for name, spec in _REGISTRY.items() if spec.classical)


def family_spec(family: str | None) -> StrategySpec | None:
    """The registered strategy an answer's `family` stands for (the first classical head
    for theirs: they answer alike); None for no family or one no longer registered."""
    return next((spec for spec in _REGISTRY.values() if spec.family == family), None)


def strategy_label(strategy: str, freeze: int) -> str:
    """`freeze-b` becomes e.g. `freeze-2`; other strategies keep their name."""
    return get_strategy(strategy).label(freeze)


def plan_phases(cfg: TrialConfig, num_stages: int) -> list[Phase]:
    """The phases a trial of `cfg` trains in, for an architecture of `num_stages` stages."""
    spec = get_strategy(cfg.strategy)
    if spec.phases is None:
        raise ValueError(f"{cfg.strategy} fits a classical head: it has no training phases")
    return spec.phases(cfg, num_stages)


# Phase plans


def one_phase(cfg: TrialConfig, num_stages: int) -> list[Phase]:
    """All the steps at the configured boundary and rates."""
    return [
        Phase(cfg.strategy, cfg.steps, cfg.freeze, cfg.lr, cfg.backbone_lr_mult, cfg.layer_decay)
    ]


def fine_tune_from_probe(cfg: TrialConfig, num_stages: int) -> list[Phase]:
    """lp-ft (Kumar et al. 2022): every step fine-tunes the whole network, as `finetune`
    does, but from a head that is already a converged linear probe (`probed_head`), so
    the new head's first gradients do not scramble the pretrained features. Same steps
    and searched rates as `finetune`: their paired comparison isolates the probed head.
    (A probe phase of gradient steps at the label's lr, as before, barely moved the head
    at the low end of the range and made lp-ft lose on its tuning, not on its idea.)"""
    return [
        Phase("fine-tune", cfg.steps, cfg.freeze, cfg.lr, cfg.backbone_lr_mult, cfg.layer_decay)
    ]


# Own parameters. Named after their strategy where the same number means a different
# model (`svm/C` is not `logreg/C`): Optuna keeps one distribution per name.


def suggest_c(strategy: str) -> Suggest:
    def suggest(trial, ranges: Ranges) -> dict:
        return {Key.C: trial.suggest_float(f"{strategy}/C", *ranges.C, log=True)}

    return suggest


def suggest_knn(trial, ranges: Ranges) -> dict:
    return {
        Key.KNN_K: trial.suggest_int("knn/k", *ranges.knn_k),
        Key.KNN_METRIC: trial.suggest_categorical("knn/metric", list(KNN_METRICS)),
    }


register(StrategySpec("scratch", FREEZE_NONE, one_phase, needs_weights=False))
register(StrategySpec("finetune", FREEZE_NONE, one_phase, backbone_lr=True))
register(StrategySpec("freeze-b", FREEZE_SEARCHED, one_phase, backbone_lr=True))
register(StrategySpec("linear-probe", FREEZE_BACKBONE, one_phase))
register(
    StrategySpec("lp-ft", FREEZE_NONE, fine_tune_from_probe, backbone_lr=True, probed_head=True)
)
register(StrategySpec("logreg", FREEZE_BACKBONE, None, suggest_c("logreg"), grid=("logreg/C", "C")))
register(StrategySpec("svm", FREEZE_BACKBONE, None, suggest_c("svm"), grid=("svm/C", "C")))
register(StrategySpec("knn", FREEZE_BACKBONE, None, suggest_knn, grid=("knn/k", "knn_k")))
