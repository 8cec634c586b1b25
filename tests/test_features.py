"""The frozen-prefix feature cache: exact (same predictions, same frozen state), keyed
by what determines the features, and off where it cannot be exact."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.helpers import HEAVY_ARCHS, source_state, stage_state
from tests.helpers import trial_config as config
from trainables.feature_store import FeatureStore
from trainables.features import (
    PrefixCache,
    cached_rest,
    capture,
)
from trainables.registry import ArchSpec, Stage, get_arch, list_archs
from trainables.train import TrialConfig, fit
from trainables.transfer import freeze

pytestmark = pytest.mark.usefixtures("one_thread")


def frozen_state(model, spec, boundary) -> dict:
    return stage_state(model, spec, spec.stages[:boundary])


@pytest.fixture(autouse=True)
def empty_memory_cache():
    FeatureStore.clear_memory()
    yield
    FeatureStore.clear_memory()


@pytest.mark.parametrize(
    "arch,strategy,boundary",
    [("resnet18", "freeze-b", 3), ("resnet18", "linear-probe", 5), ("lenet5", "freeze-b", 2)],
)
def test_cached_trial_equals_uncached_trial(digits, tmp_path, arch, strategy, boundary):
    spec = get_arch(arch)
    sources = {arch: source_state(arch)}
    reference = spec.build(52, 1)
    reference.load_state_dict(sources[arch])
    before = frozen_state(reference, spec, boundary)

    runs = {}
    for cached in (False, True):
        cfg = config(arch, strategy, boundary, feature_cache=cached, cache_dir=str(tmp_path))
        reports = []
        model, metrics = fit(cfg, digits, sources, reports.append)
        model.eval()
        with torch.no_grad():
            logits = model(torch.from_numpy(digits.test.x))
        runs[cached] = (model, metrics, reports, logits)

    (_, plain, plain_reports, plain_logits), (model, cached, cached_reports, cached_logits) = (
        runs[False],
        runs[True],
    )
    assert plain["feature_cache"] == "off: disabled by the study config"
    assert cached["feature_cache"] == "on"
    torch.testing.assert_close(cached_logits, plain_logits, rtol=1e-4, atol=1e-4)
    assert torch.equal(cached_logits.argmax(1), plain_logits.argmax(1))
    assert cached["test_acc"] == plain["test_acc"]
    assert [r["val_acc"] for r in cached_reports] == [r["val_acc"] for r in plain_reports]
    for name, model_run in (("uncached", runs[False][0]), ("cached", model)):
        after = frozen_state(model_run, spec, boundary)
        for key, value in before.items():
            assert torch.equal(after[key], value), f"{name}: frozen {key} changed"
    assert list(tmp_path.rglob("*.pt")), "features were not written to the disk cache"


def test_features_persist_on_disk_and_are_keyed_by_what_determines_them(digits, tmp_path):
    spec = get_arch("resnet18")
    torch.manual_seed(0)
    model = freeze(spec.build(10, 1), spec, 3)
    x = torch.from_numpy(digits.val.x[:20])
    store = FeatureStore(tmp_path)
    cache = PrefixCache(model, spec, 3, store)
    first = cache.features(x)
    assert first.shape == (20, 128, 4, 4)  # layer2's output at 32x32
    assert len(list(tmp_path.rglob("*.pt"))) == 1

    FeatureStore.clear_memory()
    again = PrefixCache(model, spec, 3, FeatureStore(tmp_path))
    assert again.key(x) == cache.key(x)
    assert torch.equal(again.features(x), first)  # read back from disk
    assert len(list(tmp_path.rglob("*.pt"))) == 1

    assert PrefixCache(model, spec, 2, store).key(x) != cache.key(x)  # another boundary
    assert cache.key(x[:10]) != cache.key(x)  # another split
    with torch.no_grad():
        model.layer3[0].conv1.weight.add_(1.0)  # training the rest does not change the key
    assert PrefixCache(model, spec, 3, store).key(x) == cache.key(x)
    with torch.no_grad():
        model.layer1[0].conv1.weight.add_(1.0)  # other frozen weights do
    assert PrefixCache(model, spec, 3, store).key(x) != cache.key(x)


def test_capture_leaves_modes_and_running_stats_alone(digits):
    spec = get_arch("resnet18")
    model = freeze(spec.build(10, 1), spec, 2)
    model.train()
    modes = {name: m.training for name, m in model.named_modules()}
    stats = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    capture(model, model.layer1, torch.from_numpy(digits.val.x[:8]))
    assert modes == {name: m.training for name, m in model.named_modules()}
    for key, value in model.state_dict().items():
        if "running" in key:
            assert torch.equal(value, stats[key]), key


def test_the_rest_shares_and_trains_the_real_models_parameters(digits):
    spec = get_arch("resnet18")
    model = freeze(spec.build(10, 1), spec, 3)
    x = torch.from_numpy(digits.val.x[:8])
    cache, rest, status = cached_rest(model, spec, 3, FeatureStore(), x)
    assert status == "on"
    assert {id(p) for p in rest.parameters()} <= {id(p) for p in model.parameters()}
    assert not any(p.requires_grad is False for p in rest.parameters())
    assert len(model.state_dict()) == len(spec.build(10, 1).state_dict())  # model untouched
    rest.train()
    before = model.layer3[0].bn1.running_mean.clone()
    rest(cache.features(x)).sum().backward()
    assert model.layer3[0].conv1.weight.grad is not None
    assert model.layer1[0].conv1.weight.grad is None
    assert not torch.equal(model.layer3[0].bn1.running_mean, before)  # trainable BN updates


def _small_archs() -> list:
    return [
        pytest.param(name, marks=pytest.mark.slow) if name in HEAVY_ARCHS else name
        for name in list_archs()
    ]


@pytest.mark.parametrize("name", _small_archs())
def test_the_rest_is_exact_for_every_architecture(name):
    """Every registered architecture, at its last and at a middle boundary."""
    spec = get_arch(name)
    torch.manual_seed(0)
    model = spec.build(7, 3)
    x = torch.randn(2, 3, 32, 32)
    for boundary in sorted({spec.num_stages // 2 or 1, spec.num_stages}):
        freeze(model, spec, boundary)
        _, _, status = cached_rest(model, spec, boundary, FeatureStore(), x)
        assert status == "on", (name, boundary, status)


class _SkipAcross(nn.Module):
    """A forward that feeds the input around the cut: the rest cannot run on its own."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, 3, padding=1)
        self.b = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc(self.pool(self.b(self.a(x)) + x.mean(1, keepdim=True)))


def test_an_architecture_whose_rest_is_not_separable_falls_back_and_says_why(digits):
    spec = ArchSpec(
        name="skip-across",
        family="test",
        builder=lambda n, c: _SkipAcross(),
        stages=(Stage("a", ("a",)), Stage("b", ("b", "pool"))),
        head="fc",
        default_input_size=32,
        min_input_size=32,
        first_conv="a",
    )
    model = freeze(spec.build(3, 1), spec, 1)
    cache, rest, status = cached_rest(
        model, spec, 1, FeatureStore(), torch.from_numpy(digits.val.x[:4])
    )
    assert cache is None and rest is None
    assert status.startswith("off: skip-across cut after stage 1: the rest differs")


def test_augmentation_turns_the_cache_off_and_says_so(digits, tmp_path):
    cfg = config(
        "lenet5", "freeze-b", 2, augment=("crop", "flip"), cache_dir=str(tmp_path), steps=4
    )
    _, metrics = fit(cfg, digits, {"lenet5": source_state("lenet5")}, lambda m: None)
    assert metrics["feature_cache"] == "off: augmentation (crop+flip) changes the inputs every step"
    assert not list(tmp_path.rglob("*.pt"))
    raw = {**cfg.__dict__, "augment": "crop+flip"}
    assert TrialConfig.from_tune(raw).augment == ("crop", "flip")
    assert TrialConfig.from_tune({**raw, "augment": "none"}).augment == ()
