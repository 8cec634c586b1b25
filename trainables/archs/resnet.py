"""ResNet (He et al. 2016) and ResNeXt (Xie et al. 2017), torchvision's implementations.

Stages follow detectron2's naming: `stem` (conv1, bn1, relu, maxpool), `layer1`..`layer4`;
the head is `fc`. With 1 input channel the first conv is rebuilt for one channel.
ResNet-50/101/152 and ResNeXt are torchvision's "v1.5" (stride 2 in the 3x3 conv of the
bottleneck, not in the 1x1 as in the paper); the parameter count is the paper's.
"""

from __future__ import annotations

from torchvision import models

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Stage, register

STAGES = (
    Stage("stem", ("conv1", "bn1", "relu", "maxpool")),
    Stage("layer1", ("layer1",)),
    Stage("layer2", ("layer2",)),
    Stage("layer3", ("layer3",)),
    Stage("layer4", ("layer4",)),
)

_V1 = ("IMAGENET1K_V1",)
_V1_V2 = ("IMAGENET1K_V1", "IMAGENET1K_V2")
# name: (family, torchvision weights enum, its members)
ENTRIES = {
    "resnet18": ("resnet", "ResNet18_Weights", _V1),
    "resnet34": ("resnet", "ResNet34_Weights", _V1),
    "resnet50": ("resnet", "ResNet50_Weights", _V1_V2),
    "resnet101": ("resnet", "ResNet101_Weights", _V1_V2),
    "resnet152": ("resnet", "ResNet152_Weights", _V1_V2),
    "resnext50_32x4d": ("resnext", "ResNeXt50_32X4D_Weights", _V1_V2),
    "resnext101_32x8d": ("resnext", "ResNeXt101_32X8D_Weights", _V1_V2),
}
# The deepest members; each family keeps a lighter one in the default test run.
HEAVY = frozenset({"resnet101", "resnet152", "resnext101_32x8d"})


def _spec(name: str) -> ArchSpec:
    family, enum, members = ENTRIES[name]
    return ArchSpec(
        name=name,
        family=family,
        builder=tv_builder(getattr(models, name)),
        stages=STAGES,
        head="fc",
        default_input_size=224,
        min_input_size=32,
        first_conv="conv1",
        torchvision_weights=tuple(f"{enum}.{member}" for member in members),
        heavy=name in HEAVY,
    )


for _name in ENTRIES:
    register(_name)(lambda name=_name: _spec(name))
