"""ZFNet (Zeiler & Fergus 2013, "Visualizing and Understanding Convolutional Networks").

The paper's Fig. 3 architecture: conv1 96 filters 7x7 stride 2, ReLU, 3x3 max-pool stride
2, contrast normalisation; conv2 256 5x5 stride 2, ReLU, max-pool, normalisation; conv3,
conv4, conv5 with 384/384/256 3x3 filters; max-pool; fc6 and fc7 with 4096 units and
dropout; a C-way output. With 224x224 RGB input the feature maps are 110 (conv1), 55
(pool1), 26 (conv2), 13 (pool2..conv5) and 6 (pool5), as in the paper; that needs padding
1 in conv1 and max-pools with `ceil_mode`. 62,357,608 parameters with 1000 classes.

Where this differs from the paper, and why:
- the "contrast normalisation across feature maps" is AlexNet's local response
  normalisation (size 5, alpha 1e-4, beta 0.75, k 2), which the paper adopts from AlexNet;
- an `AdaptiveAvgPool2d(6)` sits before fc6, as in torchvision's AlexNet: the identity at
  224x224, it lets other input sizes reach the fixed 9216-input fc6;
- the paper's renormalisation of conv filters whose RMS exceeds 0.1 is a training rule,
  not architecture, and is left out; initialisation is PyTorch's default;
- inputs smaller than 47x47, the smallest size that still reaches fc6, are resized up.

Stages: conv1..conv5 (each with its ReLU, pool and normalisation), fc6, fc7; head fc8.
"""

from __future__ import annotations

from torch import nn

from trainables.archs._common import tv_builder
from trainables.registry import ArchSpec, Stage, register

MIN_INPUT_SIZE = 47


def _lrn() -> nn.LocalResponseNorm:
    return nn.LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)


def _pool() -> nn.MaxPool2d:
    return nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)


def _fc(in_features: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_features, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5))


class ZFNet(nn.Module):
    def __init__(self, num_classes: int = 1000, in_channels: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(in_channels, 96, 7, stride=2, padding=1),
            nn.ReLU(inplace=True),
            _pool(),
            _lrn(),
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(96, 256, 5, stride=2), nn.ReLU(inplace=True), _pool(), _lrn()
        )
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(inplace=True), _pool()
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.flatten = nn.Flatten()
        self.fc6 = _fc(256 * 6 * 6)
        self.fc7 = _fc(4096)
        self.fc8 = nn.Linear(4096, num_classes)

    def forward(self, x):
        x = self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))
        x = self.flatten(self.avgpool(x))
        return self.fc8(self.fc7(self.fc6(x)))


@register("zfnet")
def zfnet() -> ArchSpec:
    return ArchSpec(
        name="zfnet",
        family="zfnet",
        builder=tv_builder(ZFNet),
        stages=(
            Stage("conv1", ("conv1",)),
            Stage("conv2", ("conv2",)),
            Stage("conv3", ("conv3",)),
            Stage("conv4", ("conv4",)),
            Stage("conv5", ("conv5", "avgpool", "flatten")),
            Stage("fc6", ("fc6",)),
            Stage("fc7", ("fc7",)),
        ),
        head="fc8",
        default_input_size=224,
        min_input_size=MIN_INPUT_SIZE,
        first_conv="conv1.0",
    )
