"""`source.weights: torchvision`: ImageNet weights from the local torch cache, with the
weights' own preprocessing; checked on the driver before anything starts.

No network here: the "cached" weights are a freshly initialised resnet18 saved under the
file name torchvision would download to.
"""

from __future__ import annotations

import pytest
import torch
from torchvision import models

from study.config.files import parse_config
from study.errors import ConfigError
from study.stages.load import load_checked_target
from study.stages.pretrain import pretrain_sources
from study.stages.search import trial_config
from trainables.train import TrialConfig, fit
from trainables.weights import torchvision_cache_file

WEIGHTS = "ResNet18_Weights.IMAGENET1K_V1"


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    return tmp_path / "torch"


@pytest.fixture
def cached_resnet18(torch_home):
    path = torchvision_cache_file(WEIGHTS)
    path.parent.mkdir(parents=True)
    torch.manual_seed(0)
    torch.save(models.resnet18(num_classes=1000).state_dict(), path)
    return path


def study(**search) -> dict:
    return {
        "name": "imagenet-to-digits",
        "source": {"weights": "torchvision"},
        "target": {"sizes": [2], "val_per_class": 5, "test_per_class": 5},
        "search": {"architectures": ["resnet18"], **search},
    }


def test_torchvision_weights_bring_their_preprocessing_and_skip_pretraining(cached_resnet18):
    config = parse_config(study(), "test")
    target = load_checked_target(config)
    assert target.in_channels == 3  # `channels: auto` is what the weights expect
    grey_value = target.pool.x[0, :, 0, 0]  # digits' background is black: (0 - mean) / std
    expected = torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225])
    torch.testing.assert_close(torch.from_numpy(grey_value), expected, rtol=1e-4, atol=1e-4)
    assert pretrain_sources(config, client=None) == {}
    suggestion = {"arch": "resnet18", "strategy": "linear-probe", "freeze": 5}
    assert trial_config(suggestion, {}, "glyphs", torchvision=True)["weights"] == (
        f"torchvision:{WEIGHTS}"
    )
    scratch = {**suggestion, "strategy": "scratch"}
    assert trial_config(scratch, {}, "glyphs", torchvision=True)["weights"] == "none"

    cfg = TrialConfig(
        arch="resnet18",
        strategy="linear-probe",
        freeze=5,
        lr=0.05,
        backbone_lr_mult=1.0,
        weight_decay=0.0,
        size=2,
        seed=0,
        steps=2,
        reports=1,
        batch_size=8,
        weights=f"torchvision:{WEIGHTS}",
    )
    model, metrics = fit(cfg, target, {}, lambda m: None)
    source = torch.load(cached_resnet18, weights_only=True)
    assert torch.equal(model.layer1[0].conv1.weight, source["layer1.0.conv1.weight"])
    assert model.fc.out_features == 10 and metrics["feature_cache"] == "on"


def test_weights_missing_from_the_cache_stop_the_study(torch_home):
    config = parse_config(study(), "test")
    with pytest.raises(ConfigError, match="not in the torch cache"):
        load_checked_target(config)


def test_an_architecture_without_torchvision_weights_is_refused(cached_resnet18):
    config = parse_config(study(architectures=["resnet18", "lenet5"]), "test")
    with pytest.raises(ConfigError, match="lenet5 has no torchvision weights"):
        load_checked_target(config)
