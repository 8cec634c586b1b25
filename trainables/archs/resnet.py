"""ResNet (He et al. 2016) and ResNeXt (Xie et al. 2017), torchvision's implementations.

Stages follow detectron2's naming: `stem` (conv1, bn1, relu, maxpool), `layer1`..`layer4`;
the head is `fc`. With 1 input channel the first conv is rebuilt for one channel.
ResNet-50/101/152 and ResNeXt are torchvision's "v1.5" (stride 2 in the 3x3 conv of the
bottleneck, not in the 1x1 as in the paper); the parameter count is the paper's.
"""

from __future__ import annotations

from torch import nn
from torchvision import models

from trainables.registry import ArchSpec, Stage, adapt_first_conv, register

STAGES = (
    Stage("stem", ("conv1", "bn1", "relu", "maxpool")),
    Stage("layer1", ("layer1",)),
    Stage("layer2", ("layer2",)),
    Stage("layer3", ("layer3",)),
    Stage("layer4", ("layer4",)),
)


def _builder(fn):
    def build(num_classes: int, in_channels: int) -> nn.Module:
        model = fn(weights=None, num_classes=num_classes)
        model.conv1 = adapt_first_conv(model.conv1, in_channels)
        return model

    return build


@register("resnet18")
def resnet18() -> ArchSpec:
    return ArchSpec(
        name="resnet18",
        family="resnet",
        builder=_builder(models.resnet18),
        stages=STAGES,
        head="fc",
        default_input_size=224,
        min_input_size=32,
        first_conv="conv1",
        torchvision_weights=("ResNet18_Weights.IMAGENET1K_V1",),
    )


def _spec(name: str, family: str, weights: tuple[str, ...]) -> ArchSpec:
    return ArchSpec(
        name=name,
        family=family,
        builder=_builder(getattr(models, name)),
        stages=STAGES,
        head="fc",
        default_input_size=224,
        min_input_size=32,
        first_conv="conv1",
        torchvision_weights=weights,
    )


_V1_V2 = ("IMAGENET1K_V1", "IMAGENET1K_V2")
_MORE = {
    "resnet34": ("resnet", "ResNet34_Weights", ("IMAGENET1K_V1",)),
    "resnet50": ("resnet", "ResNet50_Weights", _V1_V2),
    "resnet101": ("resnet", "ResNet101_Weights", _V1_V2),
    "resnet152": ("resnet", "ResNet152_Weights", _V1_V2),
    "resnext50_32x4d": ("resnext", "ResNeXt50_32X4D_Weights", _V1_V2),
    "resnext101_32x8d": ("resnext", "ResNeXt101_32X8D_Weights", _V1_V2),
}

for _name, (_family, _enum, _members) in _MORE.items():
    register(_name)(
        lambda name=_name, family=_family, weights=tuple(f"{_enum}.{m}" for m in _members): _spec(
            name, family, weights
        )
    )
