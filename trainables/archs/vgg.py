"""VGG (Simonyan & Zisserman 2015), torchvision's implementation, with and without BatchNorm.

vgg11/13/16/19 are configurations A, B, D and E of the paper; the `_bn` variants add
BatchNorm after every conv (torchvision's, not in the paper). vgg16 has 138,357,544 and
vgg19 143,667,240 parameters with 1000 classes, as in the paper's Table 2. torchvision's
`AdaptiveAvgPool2d(7)` is the identity at 224x224 and lets 32x32 inputs (1x1 after the
five max-pools) reach the fixed 25088-input fc6, so no resizing is needed.

Stages: conv1..conv5 are the blocks between max-pools (each ends with its pool), fc6 and
fc7 the first two Linear layers of the classifier with their ReLU and dropout; the head is
the last Linear. The module indices are derived from torchvision's own configurations.
"""

from __future__ import annotations

from torchvision import models
from torchvision.models.vgg import cfgs

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Stage, register

CONFIGS = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}


def vgg_stages(cfg: list, batch_norm: bool) -> tuple[Stage, ...]:
    """conv1..conv5 split after each max-pool ("M" in the cfg), then fc6 and fc7."""
    blocks: list[list[str]] = [[]]
    index = 0
    for layer in cfg:
        count = 1 if layer == "M" else (3 if batch_norm else 2)  # conv, [bn,] relu
        blocks[-1].extend(f"features.{i}" for i in range(index, index + count))
        index += count
        if layer == "M":
            blocks.append([])
    blocks = [block for block in blocks if block]
    blocks[-1].append("avgpool")
    return (
        *(Stage(f"conv{i}", tuple(block)) for i, block in enumerate(blocks, 1)),
        Stage("fc6", ("classifier.0", "classifier.1", "classifier.2")),
        Stage("fc7", ("classifier.3", "classifier.4", "classifier.5")),
    )


def _spec(name: str, batch_norm: bool) -> ArchSpec:
    base = name.removesuffix("_bn")
    enum = f"VGG{base[3:]}{'_BN' if batch_norm else ''}_Weights"
    return ArchSpec(
        name=name,
        family="vgg",
        builder=tv_builder(getattr(models, name)),
        stages=vgg_stages(cfgs[CONFIGS[base]], batch_norm),
        head="classifier.6",
        default_input_size=224,
        min_input_size=32,
        first_conv="features.0",
        # VGG16_Weights.IMAGENET1K_FEATURES is left out: its classifier holds no valid values.
        torchvision_weights=(f"{enum}.IMAGENET1K_V1",),
        heavy=name != "vgg11",  # vgg11 is the family's member in the default test run
    )


for _base in CONFIGS:
    for _bn in (False, True):
        _name = f"{_base}_bn" if _bn else _base
        register(_name)(lambda name=_name, bn=_bn: _spec(name, bn))
