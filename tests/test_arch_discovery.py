"""Adding an architecture is one file: a family module dropped into a package is registered.

The family below is written into a temporary package, discovered like `trainables/archs/`,
and must then pass the same contract tests as every built-in entry. The registry is
restored afterwards, since other test modules parametrize over `list_archs()`.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import tests.test_registry as contract
import trainables.registry as registry
from trainables.registry import ResizeUp, get_arch, list_archs

pytestmark = pytest.mark.usefixtures("one_thread")

NAME = "tiny_test_net"

# A family file as a contributor would write it: the plain network and its spec, nothing
# about input channels or small inputs (ArchSpec.build wires both from the spec).
FAMILY = '''
from __future__ import annotations

from torch import nn

from trainables.registry import ArchSpec, Stage, register


class TinyNet(nn.Module):
    """Works from 40x40 up: a 5x5 conv, a 4x4 max-pool, then a 9x9 conv."""

    def __init__(self, num_classes: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(3, 4, 5), nn.ReLU(), nn.MaxPool2d(4))
        self.conv2 = nn.Sequential(
            nn.Conv2d(4, 8, 9), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.conv2(self.conv1(x)))


@register("tiny_test_net")
def tiny_test_net() -> ArchSpec:
    return ArchSpec(
        name="tiny_test_net",
        family="tiny",
        builder=lambda num_classes, in_channels: TinyNet(num_classes),
        stages=(Stage("conv1", ("conv1",)), Stage("conv2", ("conv2",))),
        head="fc",
        default_input_size=64,
        min_input_size=40,
        first_conv="conv1.0",
    )
'''


@contextmanager
def family_package(root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An importable package holding FAMILY, discovered into a throwaway copy of the registry."""
    package = "tiny_test_families"
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "tiny.py").write_text(textwrap.dedent(FAMILY))
    # `_` modules are helpers, never imported by discovery: this one would fail if it were.
    (root / package / "_helpers.py").write_text("raise AssertionError('imported a _ module')\n")
    registry.discover()  # the built-in families, before the registry is copied
    with monkeypatch.context() as patch:
        patch.syspath_prepend(str(root))
        patch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
        patch.setattr(registry, "_DISCOVERED", set(registry._DISCOVERED))
        try:
            registry.discover(package)
            yield package
        finally:
            for module in [m for m in sys.modules if m.split(".")[0] == package]:
                del sys.modules[module]


def test_a_family_file_in_a_package_is_registered_and_meets_the_contract(tmp_path, monkeypatch):
    builtin = list_archs()
    with family_package(tmp_path, monkeypatch):
        assert list_archs() == sorted([*builtin, NAME])
        spec = get_arch(NAME)
        assert not spec.heavy and NAME not in registry.heavy_archs()

        # build() adapts the RGB-built first conv: same draws, filters summed for 1 channel.
        torch.manual_seed(0)
        rgb = spec.build(10, 3)
        torch.manual_seed(0)
        grey = spec.build(10, 1)
        assert grey.conv1[0].in_channels == 1
        torch.testing.assert_close(grey.conv1[0].weight, rgb.conv1[0].weight.sum(1, keepdim=True))
        assert torch.equal(grey.conv2[0].weight, rgb.conv2[0].weight)
        for model in (rgb, grey):
            hooks = [h for h in model._forward_pre_hooks.values() if isinstance(h, ResizeUp)]
            assert [h.size for h in hooks] == [40]

        # The contract every built-in entry is held to.
        contract.test_stages_resolve_are_disjoint_and_cover_every_parameter(NAME)
        contract.test_stages_run_in_forward_order(NAME)
        contract.test_trainable_parameters_strictly_decrease_with_the_freeze_boundary(NAME)
        contract.test_min_input_size_is_the_smallest_working_size(NAME)
        for channels in (1, 3):
            contract.test_forward_at_32_and_at_the_min_input_size(spec, channels)
        contract.test_training_step_leaves_frozen_stages_unchanged(spec)
    assert list_archs() == builtin
    with pytest.raises(ValueError, match="unknown architecture"):
        get_arch(NAME)
