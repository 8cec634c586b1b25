"""Contract tests for every registered architecture (timm's style: parametrized over the registry).

Structure, freezing and counts are checked on PyTorch's meta device (shapes only, so even
VGG-19 takes milliseconds); forward passes, training steps and checkpoint loading run for
real on small inputs. Heavy members carry the `slow` marker; every family keeps at least
one member in the unmarked set.
"""

from __future__ import annotations

import copy
import pickle
import re
from collections import defaultdict

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision import models
from torchvision.models import get_weight

from tests.helpers import HEAVY_ARCHS
from trainables.archs.googlenet import build_googlenet
from trainables.archs.inception import build_inception_v3
from trainables.registry import (
    ArchSpec,
    ResizeUp,
    Stage,
    count_params,
    get_arch,
    get_module,
    list_archs,
    register,
    set_module,
    unavailable_archs,
)
from trainables.transfer import freeze, param_groups
from trainables.weights import WeightsNotCached, build_for_target, torchvision_cache_file

pytestmark = pytest.mark.usefixtures("one_thread")

ARCHS = list_archs()
TORCHVISION = [name for name in ARCHS if get_arch(name).torchvision_weights]
# How torchvision builds the model its checkpoint was saved from, where that differs from
# `get_model(name, num_classes=1000)`: auxiliary heads on, input transform on.
REFERENCE_KWARGS = {
    "googlenet": {"aux_logits": True, "transform_input": True, "init_weights": True},
    "inception_v3": {"aux_logits": True, "transform_input": True, "init_weights": True},
}


def heavy_marked(names: list[str]) -> list:
    return [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY_ARCHS else n for n in names]


def meta_build(spec: ArchSpec, num_classes: int = 7, in_channels: int = 3) -> nn.Module:
    with torch.device("meta"):
        return spec.build(num_classes, in_channels)


def meta_input(size: int, channels: int = 3, batch: int = 2) -> torch.Tensor:
    return torch.empty(batch, channels, size, size, device="meta")


def stage_params(model: nn.Module, stage: Stage) -> dict[int, str]:
    return {
        id(p): f"{path}.{name}"
        for path in stage.paths
        for name, p in get_module(model, path).named_parameters()
    }


# --- the registry itself -------------------------------------------------------------------


def test_registry_holds_every_architecture_of_the_course():
    required = {
        "lenet5", "alexnet", "zfnet", "googlenet", "inception_v3",
        "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
        "resnext50_32x4d", "resnext101_32x8d", "densenet121", "densenet169", "densenet201",
        "mobilenet_v2", "mobilenet_v3_large",
    }  # fmt: skip
    assert required <= set(ARCHS)


def test_every_family_has_a_member_outside_the_slow_set():
    families = defaultdict(set)
    for name in ARCHS:
        families[get_arch(name).family].add(name)
    assert {f for f, names in families.items() if not names - HEAVY_ARCHS} == set()


def test_registering_a_name_twice_raises():
    with pytest.raises(ValueError, match="already registered"):
        register("resnet18")(lambda: get_arch("resnet18"))


def test_unknown_name_raises_listing_the_registered_names():
    with pytest.raises(ValueError) as info:
        get_arch("resnet19")
    message = str(info.value)
    assert "'resnet19'" in message
    assert all(name in message for name in ARCHS)


def test_optional_timm_entries_say_which_extra_to_install():
    missing = unavailable_archs()
    if not missing:
        pytest.skip("timm is installed: its entries are registered")
    assert set(missing) == {
        "xception",
        "resnetv2_50",
        "inception_resnet_v2",
        "mobilenet_v1",
        "nasnet_large",
    }
    with pytest.raises(ValueError, match=re.escape("pip install 'transfer-study[timm]'")):
        get_arch("xception")


def test_replace_head_handles_linear_and_1x1_conv_heads():
    def spec_for(head: nn.Module) -> tuple[ArchSpec, nn.Module]:
        model = nn.Sequential(nn.Conv2d(3, 4, 3), head)
        spec = ArchSpec("toy", "toy", lambda c, i: model, (Stage("s", ("0",)),), "1", 32, 32, "0")
        return spec, model

    spec, model = spec_for(nn.Linear(4, 10))
    assert spec.replace_head(model, 3)[1].out_features == 3
    spec, model = spec_for(nn.Conv2d(4, 10, 1))
    assert spec.replace_head(model, 3)[1].out_channels == 3
    spec, model = spec_for(nn.Conv2d(4, 10, 3))
    with pytest.raises(TypeError, match="expected Linear or 1x1 Conv2d"):
        spec.replace_head(model, 3)


def test_resize_up_keeps_aspect_and_leaves_large_inputs_alone():
    hook = ResizeUp(63)
    x = torch.zeros(1, 1, 32, 48)
    (resized,) = hook(nn.Identity(), (x,))
    assert resized.shape[-2:] == (63, 94)
    assert hook(nn.Identity(), (torch.zeros(1, 1, 63, 63),)) is None


# --- structure, on the meta device (every entry, cheap) -------------------------------------


@pytest.mark.parametrize("name", TORCHVISION)
def test_parameter_count_matches_torchvision_metadata(name):
    spec = get_arch(name)
    model = meta_build(spec, 1000, 3)
    for weights in spec.torchvision_weights:
        expected = get_weight(weights).meta["num_params"]
        if name == "inception_v3":
            # torchvision's count includes the auxiliary classifier, which is off by default.
            with torch.device("meta"):
                assert count_params(build_inception_v3(1000, 3, aux_logits=True)) == expected
                aux = models.inception.InceptionAux(768, 1000)
            assert count_params(model) + count_params(aux) == expected
        else:
            assert count_params(model) == expected, weights


def test_vgg_parameter_counts_are_the_lectures():
    assert count_params(meta_build(get_arch("vgg16"), 1000)) == 138_357_544
    assert count_params(meta_build(get_arch("vgg19"), 1000)) == 143_667_240


def test_googlenet_asked_for_aux_heads_has_them():
    with torch.device("meta"):
        model = build_googlenet(1000, 3, aux_logits=True)
    assert model.aux1 is not None and model.aux2 is not None


@pytest.mark.parametrize("name", ARCHS)
def test_stages_resolve_are_disjoint_and_cover_every_parameter(name):
    spec = get_arch(name)
    model = meta_build(spec)
    assert spec.num_stages >= 2
    assert len(set(spec.stage_names)) == spec.num_stages
    paths = [path for stage in spec.stages for path in stage.paths] + [spec.head]
    assert len(set(paths)) == len(paths)
    for path in paths:
        get_module(model, path)  # resolves
        assert not [p for p in paths if p != path and p.startswith(path + ".")], path
    owner: dict[int, str] = {}
    for stage in spec.stages:
        params = stage_params(model, stage)
        assert params, f"stage {stage.name} owns no parameter"
        assert not set(params) & set(owner), f"stage {stage.name} overlaps another"
        owner.update(params)
    head = {id(p) for p in spec.head_module(model).parameters()}
    assert head and not head & set(owner)
    every = {id(p): n for n, p in model.named_parameters()}
    assert set(owner) | head == set(every), sorted(every[i] for i in set(every) - set(owner) - head)
    assert isinstance(get_module(model, spec.first_conv), nn.Conv2d)


@pytest.mark.parametrize("name", ARCHS)
def test_stages_run_in_forward_order(name):
    spec = get_arch(name)
    model = meta_build(spec).eval()
    calls: list[int] = []
    targets = [(i, path) for i, stage in enumerate(spec.stages) for path in stage.paths]
    targets.append((spec.num_stages, spec.head))
    for index, path in targets:
        get_module(model, path).register_forward_hook(
            lambda module, args, out, index=index: calls.append(index)
        )
    with torch.no_grad():
        model(meta_input(spec.default_input_size))
    assert set(calls) == set(range(spec.num_stages + 1)), "a stage module never ran"
    assert calls == sorted(calls), f"stage order in the forward pass: {calls}"


@pytest.mark.parametrize("name", ARCHS)
def test_trainable_parameters_strictly_decrease_with_the_freeze_boundary(name):
    spec = get_arch(name)
    trainable = []
    for boundary in range(spec.num_stages + 1):
        model = freeze(meta_build(spec), spec, boundary)
        trainable.append(count_params(model, trainable_only=True))
        assert all(p.requires_grad for p in spec.head_module(model).parameters())
    assert all(a > b for a, b in zip(trainable, trainable[1:], strict=False)), trainable
    assert trainable[-1] == count_params(spec.head_module(meta_build(spec)))


@pytest.mark.parametrize("name", ARCHS)
def test_min_input_size_is_the_smallest_working_size(name):
    spec = get_arch(name)
    model = meta_build(spec).eval()
    hooks = [h for h in model._forward_pre_hooks.values() if isinstance(h, ResizeUp)]
    assert spec.min_input_size >= 32
    assert spec.default_input_size >= spec.min_input_size
    if spec.min_input_size == 32:
        assert not hooks, "an entry that works at 32x32 must not resize"
        return
    assert [h.size for h in hooks] == [spec.min_input_size]
    model._forward_pre_hooks.clear()
    model(meta_input(spec.min_input_size))
    with pytest.raises(RuntimeError):
        model(meta_input(spec.min_input_size - 1))


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_min_size_agrees_with_the_weights_metadata(name):
    spec = get_arch(name)
    meta_min = get_weight(spec.torchvision_weights[0]).meta["min_size"][0]
    assert spec.min_input_size == max(32, meta_min)


def test_zfnet_feature_maps_are_the_papers():
    model = meta_build(get_arch("zfnet"), 1000, 3).eval()
    sizes = {}
    for path in ("conv1.0", "conv1.2", "conv2.0", "conv2.2", "conv5.2"):
        get_module(model, path).register_forward_hook(
            lambda m, a, out, path=path: sizes.update({path: out.shape[-1]})
        )
    model(meta_input(224))
    assert list(sizes.values()) == [110, 55, 26, 13, 6]
    assert count_params(model) == 62_357_608


@pytest.mark.parametrize("name", ["alexnet", "googlenet", "densenet121", "inception_v3"])
def test_models_with_hooks_still_pickle_and_copy(name):
    model = meta_build(get_arch(name))
    clone = pickle.loads(pickle.dumps(model))
    assert len(clone._forward_pre_hooks) == len(model._forward_pre_hooks)
    assert len(clone._load_state_dict_pre_hooks) == len(model._load_state_dict_pre_hooks)
    copy.deepcopy(model)


# --- real forward passes and training steps -------------------------------------------------


@pytest.fixture(scope="module", params=heavy_marked(ARCHS))
def arch(request) -> ArchSpec:
    # Module scope groups each architecture's tests together, so one heavy model at a time.
    return get_arch(request.param)


@pytest.mark.parametrize("channels", [1, 3])
def test_forward_at_32_and_at_the_min_input_size(arch, channels):
    torch.manual_seed(0)
    model = arch.build(7, channels).eval()
    with torch.no_grad():
        for size in sorted({32, arch.min_input_size}):
            out = model(torch.randn(2, channels, size, size))
            assert out.shape == (2, 7), size
            assert torch.isfinite(out).all()


def test_training_step_leaves_frozen_stages_unchanged(arch):
    torch.manual_seed(0)
    boundary = arch.num_stages - 1  # the last stage and the head train
    model = freeze(arch.build(7, 1), arch, boundary)
    frozen = {
        f"{path}.{key}": value.clone()
        for stage in arch.stages[:boundary]
        for path in stage.paths
        for key, value in get_module(model, path).state_dict().items()
    }
    head_before = arch.head_module(model).weight.clone()
    optimizer = torch.optim.SGD(
        param_groups(model, arch, lr=0.05, backbone_lr_mult=1.0, weight_decay=1e-2), momentum=0.9
    )
    x, y = torch.randn(2, 1, 32, 32), torch.randint(0, 7, (2,))
    for _ in range(2):  # the second step applies momentum
        model.train()
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
    for stage in arch.stages[:boundary]:
        for path in stage.paths:
            module = get_module(model, path)
            assert not any(m.training for m in module.modules()), f"{path} left eval mode"
            for key, value in module.state_dict().items():
                assert torch.equal(value, frozen[f"{path}.{key}"]), f"{path}.{key} changed"
    assert not torch.equal(arch.head_module(model).weight, head_before)


# --- torchvision weights from the local cache only ------------------------------------------


def _old_densenet_key(key: str) -> str:
    # torchvision's DenseNet checkpoints predate the ban on dots in module names.
    return re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", key)


def _reference(name: str) -> nn.Module:
    """torchvision's own model, configured as for its ImageNet weights."""
    return models.get_model(name, num_classes=1000, **REFERENCE_KWARGS.get(name, {}))


def _as_checkpoint(name: str, reference: nn.Module) -> dict[str, torch.Tensor]:
    """`reference`'s state dict, keyed as in torchvision's checkpoint file."""
    state = reference.state_dict()
    if get_arch(name).family == "densenet":
        # As in torchvision's files: old key names, saved before BatchNorm counted batches.
        state = {
            _old_densenet_key(k): v for k, v in state.items() if "num_batches_tracked" not in k
        }
        assert any(".norm.1." in k for k in state)
    return state


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_state_dict_loads_strictly(name):
    """Every entry's module tree takes torchvision's checkpoint as is (shapes only, on meta)."""
    with torch.device("meta"):
        state = _as_checkpoint(name, _reference(name))
        model = get_arch(name).build(1000, 3)
    model.load_state_dict(state, assign=True)  # strict: aux and old DenseNet keys via hooks


def _lightest_per_family(names: list[str]) -> list[str]:
    families: dict[str, str] = {}

    def size(name: str) -> int:
        return get_weight(get_arch(name).torchvision_weights[0]).meta["num_params"]

    for name in sorted(names, key=size):
        families.setdefault(get_arch(name).family, name)
    return sorted(families.values())


@pytest.mark.parametrize("name", _lightest_per_family(TORCHVISION))
def test_torchvision_weights_load_from_the_cache_without_network(name, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    spec = get_arch(name)
    weights = spec.torchvision_weights[0]
    path = torchvision_cache_file(weights)
    assert path.parent == tmp_path / "hub" / "checkpoints"

    with pytest.raises(WeightsNotCached) as info:
        build_for_target(spec, f"torchvision:{weights}", 7, 1)
    assert str(path) in str(info.value) and weights in str(info.value)

    # The file torchvision would have downloaded: its own model, under its own file name.
    torch.manual_seed(0)
    reference = _reference(name)
    path.parent.mkdir(parents=True)
    torch.save(_as_checkpoint(name, reference), path)

    # build_for_target always gives the target a fresh head: compare the features under it.
    model = build_for_target(spec, f"torchvision:{weights}", 1000, 3).eval()
    reference.eval()
    reference_head = spec.head_module(reference)
    for net in (model, reference):
        set_module(net, spec.head, nn.Identity())
    size = max(64, spec.min_input_size)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    set_module(reference, spec.head, reference_head)
    del model

    target = build_for_target(spec, f"torchvision:{weights}", 7, 1).eval()
    conv, ref_conv = get_module(target, spec.first_conv), get_module(reference, spec.first_conv)
    torch.testing.assert_close(conv.weight, ref_conv.weight.sum(dim=1, keepdim=True))
    last = spec.stages[-1].paths[0]
    for key, value in get_module(target, last).state_dict().items():
        assert torch.equal(value, get_module(reference, last).state_dict()[key]), key
    with torch.no_grad():
        assert target(torch.randn(2, 1, 32, 32)).shape == (2, 7)
