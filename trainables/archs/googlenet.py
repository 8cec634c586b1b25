"""GoogLeNet / Inception v1 (Szegedy et al. 2015), torchvision's implementation.

torchvision adds BatchNorm to every conv (the paper has none); 6,624,904 parameters with
1000 classes and the auxiliary classifiers off. The auxiliary heads are off unless asked
for (`build_googlenet(..., aux_logits=True)`); torchvision's checkpoint carries them, and
their keys are skipped when loading into a model without them.

torchvision's ImageNet weights were ported from the original, which expects inputs scaled
to [-1, 1]; `transform_input` maps ImageNet-normalised RGB to that. It is always on here
(torchvision turns it on with those weights), so scratch and pretrained builds share one
forward; for a 1-channel input it is the identity (it is defined per RGB channel).

Stages follow the paper's Table 1 at each resolution: conv1 (7x7/2 + max-pool), conv2
(1x1 reduce + 3x3 + max-pool; torchvision's conv2/conv3), inception3 (3a, 3b, max-pool),
inception4 (4a..4e, max-pool), inception5 (5a, 5b, average pool, dropout); head fc.
"""

from __future__ import annotations

from torch import Tensor, nn
from torchvision.models import GoogLeNet

from trainables.registry import ArchSpec, DropStateKeys, Stage, get_arch, register


class _GoogLeNet(GoogLeNet):
    """torchvision's GoogLeNet (same module tree) whose input transform allows 1 channel."""

    def _transform_input(self, x: Tensor) -> Tensor:
        return super()._transform_input(x) if x.shape[1] == 3 else x


def _make(num_classes: int, in_channels: int, aux_logits: bool = False) -> nn.Module:
    """The RGB network (`ArchSpec.build` adapts its first conv for 1 channel)."""
    model = _GoogLeNet(
        num_classes=num_classes, aux_logits=aux_logits, transform_input=True, init_weights=True
    )
    if not aux_logits:
        model.register_load_state_dict_pre_hook(DropStateKeys(("aux1.", "aux2.")))
    return model


def build_googlenet(num_classes: int, in_channels: int = 3, aux_logits: bool = False) -> nn.Module:
    """The registry's googlenet; with `aux_logits` the training forward also returns aux outputs."""
    return get_arch("googlenet").build(num_classes, in_channels, aux_logits=aux_logits)


@register("googlenet")
def googlenet() -> ArchSpec:
    return ArchSpec(
        name="googlenet",
        family="googlenet",
        builder=_make,
        stages=(
            Stage("conv1", ("conv1", "maxpool1")),
            Stage("conv2", ("conv2", "conv3", "maxpool2")),
            Stage("inception3", ("inception3a", "inception3b", "maxpool3")),
            Stage(
                "inception4",
                (
                    "inception4a",
                    "inception4b",
                    "inception4c",
                    "inception4d",
                    "inception4e",
                    "maxpool4",
                ),
            ),
            Stage("inception5", ("inception5a", "inception5b", "avgpool", "dropout")),
        ),
        head="fc",
        default_input_size=224,
        min_input_size=32,
        first_conv="conv1.conv",
        torchvision_weights=("GoogLeNet_Weights.IMAGENET1K_V1",),
    )
