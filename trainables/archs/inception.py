"""Inception v3 (Szegedy et al. 2016), torchvision's implementation.

27,161,264 parameters with 1000 classes and the auxiliary classifier (what torchvision's
weights metadata counts); 23,834,568 without it. The auxiliary head is off unless asked
for (`build_inception_v3(..., aux_logits=True)`); torchvision's checkpoint carries it, and
its keys are skipped when loading into a model without it. Inputs smaller than 75x75,
the smallest size the stride-2 stem and grid reductions allow, are resized up to 75x75;
the default input is 299x299.

torchvision's ImageNet weights were ported from TensorFlow and expect inputs scaled to
[-1, 1]; `transform_input` maps ImageNet-normalised RGB to that. It is always on here (as
torchvision does with those weights), so scratch and pretrained builds share one forward;
for a 1-channel input it is the identity (it is defined per RGB channel).

Stages, at each resolution: conv1 (Conv2d_1a..2b + max-pool), conv2 (Conv2d_3b, 4a +
max-pool), mixed5 (5b..5d, 35x35), mixed6 (6a..6e, 17x17), mixed7 (7a..7c, 8x8, with the
average pool and dropout); head fc.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import Inception3

from trainables.registry import ArchSpec, DropStateKeys, Stage, get_arch, register

MIN_INPUT_SIZE = 75


class _Inception3(Inception3):
    """torchvision's Inception3 (same module tree) whose input transform allows 1 channel."""

    def _transform_input(self, x: Tensor) -> Tensor:
        return super()._transform_input(x) if x.shape[1] == 3 else x


def _make(num_classes: int, in_channels: int, aux_logits: bool = False) -> nn.Module:
    """The RGB network (`ArchSpec.build` adapts its first conv and resizes small inputs)."""
    model = _Inception3(
        num_classes=num_classes, aux_logits=aux_logits, transform_input=True, init_weights=True
    )
    if not aux_logits:
        model.register_load_state_dict_pre_hook(DropStateKeys(("AuxLogits.",)))
    return model


def build_inception_v3(
    num_classes: int, in_channels: int = 3, aux_logits: bool = False
) -> nn.Module:
    """The registry's inception_v3; with `aux_logits` the training forward also returns aux outputs."""
    return get_arch("inception_v3").build(num_classes, in_channels, aux_logits=aux_logits)


@register("inception_v3")
def inception_v3() -> ArchSpec:
    return ArchSpec(
        name="inception_v3",
        family="inception",
        builder=_make,
        stages=(
            Stage("conv1", ("Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1")),
            Stage("conv2", ("Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2")),
            Stage("mixed5", ("Mixed_5b", "Mixed_5c", "Mixed_5d")),
            Stage("mixed6", ("Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e")),
            Stage("mixed7", ("Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool", "dropout")),
        ),
        head="fc",
        default_input_size=299,
        min_input_size=MIN_INPUT_SIZE,
        first_conv="Conv2d_1a_3x3.conv",
        torchvision_weights=("Inception_V3_Weights.IMAGENET1K_V1",),
    )
