"""The strategy registry: one spec per strategy, read by the search space, the trainable,
the config schema and the labels. Adding a strategy is one `register(...)` call: the
test below does exactly that (and nothing else) and runs the new strategy end to end."""

from __future__ import annotations

import optuna
import pytest

from search_spaces import strategies
from search_spaces.strategies import (
    FREEZE_BACKBONE,
    FREEZE_NONE,
    FREEZE_SEARCHED,
    Phase,
    StrategySpec,
    get_strategy,
    list_strategies,
    one_phase,
    plan_phases,
    register,
    strategy_label,
)
from search_spaces.transfer import define_label, labels
from study.config.schema import StudyConfig
from tests.helpers import source_state, trial_config
from trainables.contract import Key, TrialConfig, is_completed
from trainables.train import fit

STAGES = {"lenet5": 4, "resnet18": 5}


def warm_then_drop(cfg: TrialConfig, num_stages: int) -> list[Phase]:
    """Half the steps at `lr`, the rest at `lr * layer_decay` (a step decay, with the
    contract's layer_decay standing in for a multiplier of its own)."""
    warm = cfg.steps // 2
    return [
        Phase("warm", warm, cfg.freeze, cfg.lr, cfg.backbone_lr_mult, 1.0),
        Phase("drop", cfg.steps - warm, cfg.freeze, cfg.lr * cfg.layer_decay, 1.0, 1.0),
    ]


def suggest_drop(trial, ranges) -> dict:
    return {Key.LAYER_DECAY: trial.suggest_float("drop-b/drop", 0.05, 0.5, log=True)}


@pytest.fixture
def drop_b(monkeypatch):
    """`drop-b`, registered for one test: the registry is put back afterwards."""
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    spec = StrategySpec("drop-b", FREEZE_SEARCHED, warm_then_drop, suggest_drop, backbone_lr=True)
    return register(spec)


@pytest.mark.usefixtures("one_thread")
def test_a_registered_strategy_is_searched_covered_planned_and_trained(drop_b, digits):
    assert list_strategies()[-1] == "drop-b"
    drop = [(lab.arch, lab.freeze, lab.name) for lab in labels(STAGES) if lab.strategy == "drop-b"]
    assert drop == [("lenet5", b, f"drop-{b}") for b in (1, 2, 3)] + [
        ("resnet18", b, f"drop-{b}") for b in (1, 2, 3, 4)
    ]
    fixed = {
        "lr": 0.1,
        "weight_decay": 1e-4,
        "backbone_lr_mult": 0.5,
        "drop-b/drop": 0.2,
    }
    config = define_label(optuna.trial.FixedTrial(fixed), "lenet5", "drop-b", 2)
    assert config == {
        "arch": "lenet5",
        "strategy": "drop-b",
        "freeze": 2,
        "lr": 0.1,
        "backbone_lr_mult": 0.5,
        "weight_decay": 1e-4,
        "layer_decay": 0.2,
    }
    assert strategy_label("drop-b", 2) == "drop-2"

    cfg = trial_config(**config, steps=8, reports=2, size=3)
    plan = plan_phases(cfg, 4)
    assert [(p.name, p.steps, p.boundary) for p in plan] == [("warm", 4, 2), ("drop", 4, 2)]
    assert plan[1].lr == pytest.approx(0.02)
    reports = []
    _, metrics = fit(cfg, digits, {"lenet5": source_state("lenet5")}, reports.append)
    assert [r["epoch"] for r in reports] == [1, 2] and is_completed(metrics)
    assert metrics["feature_cache"] == "warm: on; drop: on"


def test_the_registered_strategy_is_gone_afterwards():
    assert "drop-b" not in list_strategies()


def test_labels_spell_out_only_a_searched_boundary():
    assert [strategy_label(s, 3) for s in list_strategies()] == [
        "scratch", "finetune", "freeze-3", "linear-probe", "lp-ft", "logreg", "svm", "knn"
    ]  # fmt: skip


def test_the_config_schema_allows_the_registered_names():
    assert StudyConfig.model_validate({"name": "x"}).search.strategies == list(list_strategies())
    with pytest.raises(ValueError, match="'scratch', 'finetune'.* or 'knn'"):
        StudyConfig.model_validate({"name": "x", "search": {"strategies": ["freeze"]}})


def test_only_scratch_starts_from_random_weights():
    assert [s for s in list_strategies() if not get_strategy(s).needs_weights] == ["scratch"]


def test_registry_errors_name_the_rule_the_value_and_the_choices(monkeypatch):
    monkeypatch.setattr(strategies, "_REGISTRY", dict(strategies._REGISTRY))
    with pytest.raises(ValueError, match="'finetune' is already registered"):
        register(StrategySpec("finetune", FREEZE_NONE, one_phase))
    with pytest.raises(ValueError, match="unknown strategy 'fine-tune'; registered: scratch, "):
        get_strategy("fine-tune")
    with pytest.raises(ValueError, match="must be one of none, searched, backbone, got 'half'"):
        register(StrategySpec("half", "half", one_phase))
    with pytest.raises(ValueError, match=f"must be {FREEZE_BACKBONE}, got 'none'"):
        register(StrategySpec("tree", FREEZE_NONE, None))
    with pytest.raises(ValueError, match="knn fits a classical head"):
        plan_phases(trial_config("lenet5", "knn", 4), 4)
