"""Every strategy of the course: exact freezing over epochs, lp-ft's probed head, classical
heads on frozen features, layer-wise learning-rate decay, and the search space."""

from __future__ import annotations

from dataclasses import astuple
from functools import partial

import numpy as np
import optuna
import pytest
import torch

from search_spaces import transfer as space
from search_spaces.strategies import Phase, classical_strategies, list_strategies, plan_phases
from tests.helpers import source_state, stage_state, trial_config
from trainables.contract import TrialConfig
from trainables.feature_store import FeatureStore
from trainables.features import capture
from trainables.loops import accuracy, train_steps
from trainables.phases import PhaseRun
from trainables.registry import get_arch
from trainables.train import fit
from trainables.transfer import freeze, param_groups

pytestmark = pytest.mark.usefixtures("one_thread")

config = partial(trial_config, weight_decay=1e-2, size=4)


def test_the_registry_holds_every_strategy_in_order():
    assert list_strategies() == (
        "scratch", "finetune", "freeze-b", "linear-probe", "lp-ft", "logreg", "svm", "knn"
    )  # fmt: skip
    assert set(classical_strategies()) == {"logreg", "svm", "knn"}


@pytest.mark.parametrize("cached", [False, True])
def test_frozen_stages_keep_weights_stats_and_have_no_optimizer_state(digits, cached):
    """Several epochs of SGD with momentum and weight decay: the frozen stages' weights and
    BatchNorm statistics do not move, and the optimizer holds no state for them at all."""
    spec = get_arch("resnet18")
    boundary = 3
    torch.manual_seed(0)
    model = spec.build(10, 1)
    frozen_before = stage_state(model, spec, spec.stages[:boundary])
    trainable_before = stage_state(model, spec, spec.stages[boundary:])
    cfg = config("resnet18", "freeze-b", boundary, feature_cache=cached)
    phase = Phase("freeze-b", 12, boundary, 0.1, 1.0, 1.0)
    x, y = (t[:24] for t in digits.pool.tensors())
    val_x, val_y = digits.val.tensors()
    run = PhaseRun(phase, cfg, spec, model, (x, val_x), FeatureStore())
    assert run.status == ("on" if cached else "off: disabled by the study config")
    generator = torch.Generator().manual_seed(0)
    for _epoch in range(4):
        train_steps(run.net, run.optimizer, run.scheduler, run.x, y, 3, 8, generator)
        accuracy(run.net, run.val_x, val_y)
        model.train()  # anybody's train() call keeps the frozen stages in eval mode

    frozen_ids = {
        id(p)
        for stage in spec.stages[:boundary]
        for m in spec.stage_modules(model, stage)
        for p in m.parameters()
    }
    in_optimizer = {id(p) for group in run.optimizer.param_groups for p in group["params"]}
    assert not frozen_ids & in_optimizer
    assert not frozen_ids & {id(p) for p in run.optimizer.state}
    assert any("momentum_buffer" in s for s in run.optimizer.state.values())  # momentum is on
    assert all(g["momentum"] == 0.9 for g in run.optimizer.param_groups)
    assert any(g["weight_decay"] > 0 for g in run.optimizer.param_groups)
    for stage in spec.stages[:boundary]:
        for module in spec.stage_modules(model, stage):
            assert not any(m.training for m in module.modules())
            assert all(p.grad is None for p in module.parameters())
    after = stage_state(model, spec, spec.stages)
    for key, value in frozen_before.items():
        assert torch.equal(after[key], value), f"frozen {key} changed"
    moved = [k for k, v in trainable_before.items() if not torch.equal(after[k], v)]
    assert any("running_mean" in k for k in moved) and any(k.endswith("weight") for k in moved)


def test_lp_ft_starts_from_a_converged_probe_and_fine_tunes_everything(digits, monkeypatch):
    """Before its first step lp-ft's head predicts what the `logreg` head fitted on the same
    frozen features predicts; then every step trains the whole network, as finetune does."""
    import trainables.phases as phases
    import trainables.train as train
    from trainables.heads import fit_head

    spec = get_arch("resnet18")
    source = source_state("resnet18")
    built, reports = [], []
    original = train.build_trial_model

    def build_and_keep(*args):
        result = original(*args)
        built.append(result[1])
        return result

    monkeypatch.setattr(train, "build_trial_model", build_and_keep)
    first_step = []
    original_train_steps = phases.train_steps

    def note_the_head(net, *args, **kwargs):
        if not first_step:  # the head as the first step finds it
            head = spec.head_module(built[0])
            first_step.append((head.weight.detach().clone(), head.bias.detach().clone()))
        return original_train_steps(net, *args, **kwargs)

    monkeypatch.setattr(phases, "train_steps", note_the_head)
    cfg = config("resnet18", "lp-ft", 0, steps=6, reports=3, probe_C=0.05)
    _, metrics = fit(cfg, digits, {"resnet18": source}, reports.append)
    assert [m["epoch"] for m in reports] == [1, 2, 3] and "test_acc" in metrics
    assert all(m["trainable_params"] > 11_000_000 for m in reports)  # no probe steps
    assert metrics["feature_cache"] == "probe: on; fine-tune: off: nothing frozen"

    _, model = original(cfg, digits, {"resnet18": source})  # the backbone fit() started from
    x, y = digits.train_subset(4, 0).tensors()
    val_x, _ = digits.val.tensors()
    features = partial(capture, model, spec.head_module(model), inputs=True)
    logreg = fit_head("logreg", features(x).numpy(), y.numpy(), C=0.05)
    weight, bias = first_step[0]
    predicted = (features(val_x) @ weight.T + bias).argmax(1).numpy()
    assert np.array_equal(predicted, logreg.predict(features(val_x).numpy()))
    assert len(set(predicted)) > 5


def test_lp_ft_trains_every_step_at_the_searched_rates_like_finetune():
    (phase,) = plan_phases(config("lenet5", "lp-ft", 0, lr=0.2, backbone_lr_mult=0.5), 4)
    assert astuple(phase) == ("fine-tune", 8, 0, 0.2, 0.5, 1.0)


@pytest.mark.parametrize("classes", [2, 3])
def test_the_probe_is_a_linear_layer_with_the_logreg_heads_predictions(classes):
    from trainables.heads import fit_head, linear_layer

    rng = np.random.default_rng(0)
    labels = np.arange(60) % classes
    features = rng.normal(size=(60, 5)) * [1, 10, 0.1, 3, 1] + labels[:, None] * [1, 0, 2, 0, 1]
    head = fit_head("logreg", features, labels, C=0.1)
    weight, bias = linear_layer(head, classes)
    assert weight.shape == (classes, 5) and bias.shape == (classes,)
    logits = features @ weight.T + bias
    assert np.array_equal(logits.argmax(1), head.predict(features))
    probabilities = head.estimator.predict_proba(features)
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(softmax / softmax.sum(1, keepdims=True), probabilities, atol=1e-5)
    with pytest.raises(ValueError, match=f"the probe saw {classes} of the {classes + 1} classes"):
        linear_layer(head, classes + 1)


@pytest.mark.parametrize(
    "strategy,extra",
    [("logreg", {"C": 0.5}), ("svm", {"C": 0.05}), ("knn", {"knn_k": 50, "knn_metric": "cosine"})],
)
def test_classical_heads_on_frozen_features_keep_the_report_contract(digits, strategy, extra):
    spec = get_arch("resnet18")
    reports = []
    cfg = config("resnet18", strategy, spec.num_stages, reports=3, lr=0.0, **extra)
    classifier, metrics = fit(cfg, digits, {"resnet18": source_state("resnet18")}, reports.append)
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert "test_acc" not in reports[0] and "test_acc" in reports[-1]
    assert all(r["val_acc"] == r["best_val_acc"] == metrics["val_acc"] for r in reports)
    assert metrics["feature_cache"] == "on"
    predicted = classifier.predict(torch.from_numpy(digits.test.x))
    assert metrics["test_acc"] == pytest.approx(np.mean(predicted == digits.test.y))
    if strategy == "knn":  # k = all 40 examples: a vote over everything, near chance
        assert metrics["trainable_params"] == 0
        assert classifier.head.estimator.n_neighbors == 40  # k capped at the 40 examples
    else:
        assert metrics["trainable_params"] == 512 * 10 + 10
        assert metrics["test_acc"] > 0.3  # features of random source weights still beat chance


def test_classical_heads_need_the_whole_backbone_frozen(digits):
    with pytest.raises(ValueError, match="needs the whole backbone frozen"):
        fit(config("lenet5", "svm", 2), digits, {"lenet5": source_state("lenet5")}, print)


def test_layer_decay_lowers_the_lr_stage_by_stage_toward_the_input():
    spec = get_arch("resnet18")
    model = freeze(spec.build(10, 1), spec, 1)
    groups = param_groups(model, spec, 0.1, 0.5, 1e-3, layer_decay=0.5)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert lr_of[id(model.fc.weight)] == pytest.approx(0.1)
    expected = {"layer4": 0.05, "layer3": 0.025, "layer2": 0.0125, "layer1": 0.00625}
    for name, lr in expected.items():
        for param in getattr(model, name).parameters():
            assert lr_of[id(param)] == pytest.approx(lr), name
    assert not any(id(p) in lr_of for p in model.conv1.parameters())  # frozen: not given
    assert wd_of[id(model.layer2[0].bn1.weight)] == 0.0 and wd_of[id(model.fc.bias)] == 0.0
    assert wd_of[id(model.layer2[0].conv1.weight)] == 1e-3
    plain = param_groups(model, spec, 0.1, 0.5, 1e-3)
    assert {g["lr"] for g in plain} == {0.1, 0.05}
    with pytest.raises(ValueError, match="layer_decay"):
        param_groups(model, spec, 0.1, 0.5, 1e-3, layer_decay=1.5)


def _suggest(strategy: str, ranges: space.Ranges | None = None, seed=0) -> tuple[dict, dict]:
    """A configuration of `strategy`'s last label on resnet18 (freeze-b: b = 4)."""
    label = space.labels({"resnet18": 5}, [strategy])[-1]
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    config = space.define_label(trial, *astuple(label), ranges or space.Ranges())
    return config, trial.params


@pytest.mark.parametrize("strategy", list_strategies())
def test_every_strategy_suggests_its_own_parameters_and_runs_as_a_trial_config(strategy):
    config, params = _suggest(strategy)
    assert config["strategy"] == strategy
    expected_freeze = {"linear-probe": 5, "logreg": 5, "svm": 5, "knn": 5}.get(strategy, 0)
    assert config["freeze"] == (4 if strategy == "freeze-b" else expected_freeze)
    own = {
        "logreg": {"logreg/C"},
        "svm": {"svm/C"},
        "knn": {"knn/k", "knn/metric"},
        "lp-ft": {"backbone_lr_mult", "lr", "weight_decay"},
    }
    extra = set(params)
    if strategy in own:
        assert extra == own[strategy]
    if strategy in classical_strategies():
        assert "lr" not in params and config["lr"] == 0.0
    raw = {**config, "size": 2, "seed": 0, "steps": 4, "reports": 2, "batch_size": 8}
    cfg = TrialConfig.from_tune({**raw, "weights": "study:glyphs", "phase": "search"})
    assert cfg.strategy == strategy


def test_layer_decay_is_searched_only_when_configured():
    config, params = _suggest("finetune")
    assert "layer_decay" not in config
    ranges = space.Ranges(layer_decay=(0.5, 1.0))
    config, params = _suggest("finetune", ranges)
    assert 0.5 <= config["layer_decay"] <= 1.0 and "layer_decay" in params
    config, params = _suggest("linear-probe", ranges)
    assert "layer_decay" not in config  # nothing of the backbone trains


def test_categorical_choices_stay_the_same_under_one_name():
    """Optuna refuses a categorical whose choices change under one name: every label of
    every architecture can be asked in one study (one storage holds them all)."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=3))
    stages = {"resnet18": 5, "lenet5": 4}
    ranges = space.Ranges(layer_decay=(0.6, 1.0))
    for label in space.labels(stages, list_strategies()) * 3:
        trial = study.ask()
        space.define_label(trial, *astuple(label), ranges)
        study.tell(trial, 0.5)
    assert {name for t in study.trials for name in t.params} >= {"knn/metric", "svm/C", "lr"}
