"""The trainable's transfer behaviour: exact freezing, separate learning rates, metrics."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from tests.helpers import source_state, stage_state, trial_config
from trainables.registry import get_arch
from trainables.train import TrialConfig, fit

config = partial(trial_config, size=3, steps=6)


@pytest.mark.parametrize("arch,boundary", [("resnet18", 2), ("lenet5", 2)])
def test_frozen_stages_are_bit_identical_after_training(digits, arch, boundary):
    spec = get_arch(arch)
    source = source_state(arch)
    reference = spec.build(num_classes=52, in_channels=1)
    reference.load_state_dict(source)
    before = stage_state(reference, spec, spec.stages)

    model, metrics = fit(config(arch, "freeze-b", boundary), digits, {arch: source}, lambda m: None)

    after = stage_state(model, spec, spec.stages)
    frozen = {s.name for s in spec.stages[:boundary]}
    for key, tensor in before.items():
        if key.split(".")[0] in frozen:
            assert torch.equal(after[key], tensor), f"frozen {key} moved"
    moved = [
        k for k in before if k.split(".")[0] not in frozen and not torch.equal(after[k], before[k])
    ]
    assert moved, "the trainable stages did not learn"
    if arch == "resnet18":  # running statistics of a trainable BatchNorm do update
        assert any("running_mean" in k for k in moved)
    head = spec.head_module(model)
    assert head.out_features == 10 and head.weight.requires_grad
    assert 0.0 <= metrics["test_acc"] <= 1.0 and metrics["epoch"] == 2


def test_frozen_batchnorm_stays_in_eval_mode_after_train_calls(digits):
    spec = get_arch("resnet18")
    model, _ = fit(
        config("resnet18", "freeze-b", 3),
        digits,
        {"resnet18": source_state("resnet18")},
        lambda m: None,
    )
    model.train()
    for stage in spec.stages[:3]:
        for module in spec.stage_modules(model, stage):
            assert not any(m.training for m in module.modules())
    assert all(m.training for m in spec.stage_modules(model, spec.stages[3]))


def test_linear_probe_trains_only_the_head_and_reports_each_epoch(digits):
    reports = []
    spec = get_arch("lenet5")
    model, metrics = fit(
        config("lenet5", "linear-probe", spec.num_stages, reports=3, steps=9),
        digits,
        {"lenet5": source_state("lenet5")},
        reports.append,
    )
    head_params = sum(p.numel() for p in spec.head_module(model).parameters())
    assert metrics["trainable_params"] == head_params
    assert [r["epoch"] for r in reports] == [1, 2, 3]
    assert "test_acc" not in reports[0] and "test_acc" in reports[-1]
    assert reports[-1]["best_val_acc"] == max(r["val_acc"] for r in reports)


def test_scratch_ignores_source_weights(digits):
    """Given the study's weight choice and a source checkpoint, a scratch trial starts from
    random weights; a fine-tune trial handed the same checkpoint starts from it (the
    control that lets this test fail). lr 0: nothing moves, what is left is the start."""
    from study.stages.pretrain import weights_for

    sources = {"lenet5": source_state("lenet5")}
    models = {
        strategy: fit(
            config(
                "lenet5",
                strategy,
                0,
                weights=weights_for(strategy, "lenet5", "glyphs"),
                lr=0.0,
                steps=1,
                reports=1,
            ),
            digits,
            sources,
            lambda m: None,
        )[0]
        for strategy in ("scratch", "finetune")
    }
    source = sources["lenet5"]["c1.0.weight"]
    assert torch.equal(models["finetune"].c1[0].weight, source)
    assert not torch.equal(models["scratch"].c1[0].weight, source)


def test_trial_config_reads_a_tune_config():
    raw = {**config("lenet5", "finetune", 0).__dict__, "size": "all", "phase": "search", "extra": 1}
    assert TrialConfig.from_tune(raw).size is None
    del raw["lr"]
    with pytest.raises(ValueError, match="lacks lr"):
        TrialConfig.from_tune(raw)
