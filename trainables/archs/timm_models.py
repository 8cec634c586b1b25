"""The lecture table's rows torchvision lacks, from timm, when the `timm` extra is installed.

Xception (Chollet 2017; timm's `legacy_xception`, the paper's network), ResNet v2 (He et
al. 2016, pre-activation; `resnetv2_50`), Inception-ResNet v2 (Szegedy et al. 2017),
MobileNet v1 (Howard et al. 2017; timm's `mobilenetv1_100`) and NASNet-A Large (Zoph et
al. 2018). Without timm these names are absent from the registry and asking for one says
which extra to install. timm builds the first conv for `in_channels` itself (so
`ArchSpec.build` leaves it alone). Weight
sources are `none`, `checkpoint:` (e.g. a timm state dict saved to a file) and `study:`;
timm's pretrained weights come from the Hugging Face hub, which trials never reach.

Stages follow each paper's own grouping at each resolution (see the specs below); the
head is the final classifier. Inception-ResNet v2 resizes inputs under 75x75 up to 75.
"""

from __future__ import annotations

from torch import nn

from trainables.registry import (
    SMALLEST_IMAGE,
    ArchSpec,
    Builder,
    Stage,
    register,
    register_optional,
)

EXTRA = "timm"

try:
    import timm
except ImportError:  # the optional extra is not installed
    timm = None


def _builder(timm_name: str) -> Builder:
    def build(num_classes: int, in_channels: int) -> nn.Module:
        return timm.create_model(
            timm_name, pretrained=False, num_classes=num_classes, in_chans=in_channels
        )

    return build


def _paths(prefix: str, indices: range) -> tuple[str, ...]:
    return tuple(f"{prefix}{i}" for i in indices)


# The largest entries: their contract tests are `slow`, whether or not timm is installed.
HEAVY = frozenset({"inception_resnet_v2", "nasnet_large"})

# name: (timm name, family, stages, head, first conv, default input, min input)
SPECS: dict[str, tuple] = {
    "xception": (
        "legacy_xception",
        "xception",
        (
            Stage("stem", ("conv1", "bn1", "act1", "conv2", "bn2", "act2")),
            Stage("entry", ("block1", "block2", "block3")),
            Stage("middle", _paths("block", range(4, 12))),
            Stage(
                "exit",
                ("block12", "conv3", "bn3", "act3", "conv4", "bn4", "act4", "global_pool"),
            ),
        ),
        "fc",
        "conv1",
        299,
        SMALLEST_IMAGE,
    ),
    "resnetv2_50": (
        "resnetv2_50",
        "resnetv2",
        (
            Stage("stem", ("stem",)),
            Stage("layer1", ("stages.0",)),
            Stage("layer2", ("stages.1",)),
            Stage("layer3", ("stages.2",)),
            Stage("layer4", ("stages.3", "norm", "head.global_pool", "head.drop")),
        ),
        "head.fc",
        "stem.conv",
        224,
        SMALLEST_IMAGE,
    ),
    "inception_resnet_v2": (
        "inception_resnet_v2",
        "inception_resnet",
        (
            Stage("conv1", ("conv2d_1a", "conv2d_2a", "conv2d_2b", "maxpool_3a")),
            Stage("conv2", ("conv2d_3b", "conv2d_4a", "maxpool_5a")),
            Stage("block35", ("mixed_5b", "repeat")),
            Stage("block17", ("mixed_6a", "repeat_1")),
            Stage(
                "block8",
                ("mixed_7a", "repeat_2", "block8", "conv2d_7b", "global_pool", "head_drop"),
            ),
        ),
        "classif",
        "conv2d_1a.conv",
        299,
        75,
    ),
    "mobilenet_v1": (
        "mobilenetv1_100",
        "mobilenet",
        (
            Stage("stem", ("conv_stem", "bn1", "blocks.0")),
            Stage("stage1", ("blocks.1",)),
            Stage("stage2", ("blocks.2",)),
            Stage("stage3", ("blocks.3",)),
            Stage("stage4", ("blocks.4", "global_pool")),
        ),
        "classifier",
        "conv_stem",
        224,
        SMALLEST_IMAGE,
    ),
    "nasnet_large": (
        "nasnetalarge",
        "nasnet",
        (
            Stage("stem", ("conv0", "cell_stem_0", "cell_stem_1")),
            Stage("cells1", _paths("cell_", range(0, 6))),
            Stage("cells2", ("reduction_cell_0", *_paths("cell_", range(6, 12)))),
            Stage(
                "cells3",
                (
                    "reduction_cell_1",
                    *_paths("cell_", range(12, 18)),
                    "act",
                    "global_pool",
                    "head_drop",
                ),
            ),
        ),
        "last_linear",
        "conv0.conv",
        331,
        SMALLEST_IMAGE,
    ),
}


def _spec(name: str) -> ArchSpec:
    timm_name, family, stages, head, first_conv, default_size, min_size = SPECS[name]
    return ArchSpec(
        name=name,
        family=family,
        builder=_builder(timm_name),
        stages=stages,
        head=head,
        default_input_size=default_size,
        min_input_size=min_size,
        first_conv=first_conv,
        heavy=name in HEAVY,
    )


for _name in SPECS:
    register_optional(_name, EXTRA, heavy=_name in HEAVY)
    if timm is not None:
        register(_name)(lambda name=_name: _spec(name))
