"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998), for 32x32 inputs.

C1 6@28x28 (5x5) -> S2 6@14x14 -> C3 16@10x10 (5x5) -> S4 16@5x5 -> C5 120 -> F6 84 -> output.
61,706 parameters with 10 classes and 1 input channel.

Differences from the paper, kept on purpose because they are what the course and every
modern reimplementation use:
- C3 connects to all 6 S2 maps (the paper's sparse connection table gives 1,516 weights
  in C3, this gives 2,416);
- S2/S4 are plain 2x2 average pooling (the paper gives each map a trainable coefficient
  and bias), followed by the tanh non-linearity;
- the output layer is linear with softmax cross-entropy instead of Euclidean RBF units.
"""

from __future__ import annotations

from torch import nn

from trainables.registry import ArchSpec, Stage, register


class LeNet5(nn.Module):
    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv2d(in_channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2))
        self.c3 = nn.Sequential(nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2))
        self.c5 = nn.Sequential(nn.Conv2d(16, 120, 5), nn.Tanh(), nn.Flatten())
        self.f6 = nn.Sequential(nn.Linear(120, 84), nn.Tanh())
        self.output = nn.Linear(84, num_classes)

    def forward(self, x):
        return self.output(self.f6(self.c5(self.c3(self.c1(x)))))


@register("lenet5")
def lenet5() -> ArchSpec:
    return ArchSpec(
        name="lenet5",
        family="lenet",
        builder=LeNet5,  # built for `in_channels` directly (build() leaves its c1 alone)
        stages=(
            Stage("c1", ("c1",)),
            Stage("c3", ("c3",)),
            Stage("c5", ("c5",)),
            Stage("f6", ("f6",)),
        ),
        head="output",
        default_input_size=32,
        min_input_size=32,
        first_conv="c1.0",
    )
