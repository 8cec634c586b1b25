"""AlexNet (Krizhevsky, Sutskever, Hinton 2012), torchvision's implementation.

torchvision follows the "one weird trick" single-GPU variant (Krizhevsky 2014): 64/192/
384/256/256 filters instead of the paper's 96/256/384/384/256 split over two GPUs, and no
local response normalisation; 61,100,840 parameters with 1000 classes. Its
`AdaptiveAvgPool2d(6)` is the identity at 224x224. Inputs smaller than 63x63 (where the
last max-pool runs out of pixels) are resized up to 63x63.

Stages are the paper's layers: conv1..conv5 (each with its ReLU and max-pool), fc6, fc7
(each with the dropout in front of it and its ReLU); the head is the last Linear.
"""

from __future__ import annotations

from torchvision import models

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Stage, register

MIN_INPUT_SIZE = 63

STAGES = (
    Stage("conv1", ("features.0", "features.1", "features.2")),
    Stage("conv2", ("features.3", "features.4", "features.5")),
    Stage("conv3", ("features.6", "features.7")),
    Stage("conv4", ("features.8", "features.9")),
    Stage("conv5", ("features.10", "features.11", "features.12", "avgpool")),
    Stage("fc6", ("classifier.0", "classifier.1", "classifier.2")),
    Stage("fc7", ("classifier.3", "classifier.4", "classifier.5")),
)


@register("alexnet")
def alexnet() -> ArchSpec:
    return ArchSpec(
        name="alexnet",
        family="alexnet",
        builder=tv_builder(models.alexnet),
        stages=STAGES,
        head="classifier.6",
        default_input_size=224,
        min_input_size=MIN_INPUT_SIZE,
        first_conv="features.0",
        torchvision_weights=("AlexNet_Weights.IMAGENET1K_V1",),
    )
