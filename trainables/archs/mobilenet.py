"""MobileNet v2 (Sandler et al. 2018) and v3-Large (Howard et al. 2019), torchvision's.

mobilenet_v2 has 3,504,872 and mobilenet_v3_large 5,483,032 parameters with 1000 classes.
Stages split `features` where the resolution halves, as timm's feature maps do: stem
(stride 2), stage1 (4), stage2 (8), stage3 (16), stage4 (32, with the last 1x1 conv);
v3's classifier has a hidden Linear (960 -> 1280, h-swish, dropout) that is stage fc, and
v2's classifier dropout sits in stage4. The head is the last Linear.
"""

from __future__ import annotations

from torchvision import models

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Stage, register


def _features(*indices: int) -> tuple[str, ...]:
    return tuple(f"features.{i}" for i in indices)


V2_STAGES = (
    Stage("stem", _features(0, 1)),
    Stage("stage1", _features(2, 3)),
    Stage("stage2", _features(4, 5, 6)),
    Stage("stage3", _features(*range(7, 14))),
    Stage("stage4", (*_features(*range(14, 19)), "classifier.0")),
)

V3_LARGE_STAGES = (
    Stage("stem", _features(0, 1)),
    Stage("stage1", _features(2, 3)),
    Stage("stage2", _features(4, 5, 6)),
    Stage("stage3", _features(*range(7, 13))),
    Stage("stage4", (*_features(*range(13, 17)), "avgpool")),
    Stage("fc", ("classifier.0", "classifier.1", "classifier.2")),
)


@register("mobilenet_v2")
def mobilenet_v2() -> ArchSpec:
    return ArchSpec(
        name="mobilenet_v2",
        family="mobilenet",
        builder=tv_builder(models.mobilenet_v2),
        stages=V2_STAGES,
        head="classifier.1",
        default_input_size=224,
        min_input_size=32,
        first_conv="features.0.0",
        torchvision_weights=(
            "MobileNet_V2_Weights.IMAGENET1K_V1",
            "MobileNet_V2_Weights.IMAGENET1K_V2",
        ),
    )


@register("mobilenet_v3_large")
def mobilenet_v3_large() -> ArchSpec:
    return ArchSpec(
        name="mobilenet_v3_large",
        family="mobilenet",
        builder=tv_builder(models.mobilenet_v3_large),
        stages=V3_LARGE_STAGES,
        head="classifier.3",
        default_input_size=224,
        min_input_size=32,
        first_conv="features.0.0",
        torchvision_weights=(
            "MobileNet_V3_Large_Weights.IMAGENET1K_V1",
            "MobileNet_V3_Large_Weights.IMAGENET1K_V2",
        ),
    )
