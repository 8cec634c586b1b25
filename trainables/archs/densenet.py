"""DenseNet (Huang et al. 2017), torchvision's implementation (DenseNet-BC, growth 32).

densenet121/169/201 have 7,978,856 / 14,149,480 / 20,013,928 parameters with 1000 classes.
Stages: stem (7x7 conv, BN, ReLU, max-pool), denseblock1..denseblock3 (each with the
transition layer after it), denseblock4 (with the final BatchNorm); head `classifier`.

torchvision's ImageNet checkpoints predate PyTorch's ban on dots in module names and
store keys like `denselayer1.norm.1.weight`; torchvision renames them when it loads, and
so does a load_state_dict pre-hook here, so `torchvision:` weights load into this tree.
"""

from __future__ import annotations

import re

from torch import nn
from torchvision import models

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Builder, Stage, register

# torchvision.models.densenet._load_state_dict's pattern.
_OLD_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)

STAGES = (
    Stage("stem", ("features.conv0", "features.norm0", "features.relu0", "features.pool0")),
    Stage("denseblock1", ("features.denseblock1", "features.transition1")),
    Stage("denseblock2", ("features.denseblock2", "features.transition2")),
    Stage("denseblock3", ("features.denseblock3", "features.transition3")),
    Stage("denseblock4", ("features.denseblock4", "features.norm5")),
)


class RenameOldKeys:
    """load_state_dict pre-hook: `...norm.1.weight` -> `...norm1.weight`, as torchvision does."""

    def __call__(self, module, state_dict, prefix, *args) -> None:
        for key in list(state_dict):
            match = _OLD_KEY.match(key)
            if match and key.startswith(prefix):
                state_dict[match.group(1) + match.group(2)] = state_dict.pop(key)


def _builder(name: str) -> Builder:
    build = tv_builder(getattr(models, name))

    def build_densenet(num_classes: int, in_channels: int) -> nn.Module:
        """torchvision's DenseNet that also loads torchvision's old-style checkpoint keys."""
        model = build(num_classes, in_channels)
        model.register_load_state_dict_pre_hook(RenameOldKeys())
        return model

    return build_densenet


def _spec(name: str) -> ArchSpec:
    return ArchSpec(
        name=name,
        family="densenet",
        builder=_builder(name),
        stages=STAGES,
        head="classifier",
        default_input_size=224,
        min_input_size=32,
        first_conv="features.conv0",
        torchvision_weights=(f"DenseNet{name[8:]}_Weights.IMAGENET1K_V1",),
        heavy=name != "densenet121",  # densenet121 is the family's member in the default run
    )


for _name in ("densenet121", "densenet169", "densenet201"):
    register(_name)(lambda name=_name: _spec(name))
