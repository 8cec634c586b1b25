"""Shared builder for torchvision-backed entries.

torchvision's builders are called with `weights=None` (nothing is downloaded at build
time); pretrained weights are loaded afterwards by `trainables.weights`, into the same
module tree, so every state-dict key stays torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainables.registry import Builder


def tv_builder(make: Callable[..., nn.Module]) -> Builder:
    """A registry builder around a torchvision model function or class (`make(num_classes=)`).

    The model is always built for RGB, as torchvision's weights are: `ArchSpec.build` then
    sums the first conv's filters for 1 channel, so a 1-channel model is initialised
    exactly as the RGB one, and resizes inputs below the entry's smallest working size.
    """

    def build(num_classes: int, in_channels: int, **options) -> nn.Module:
        return make(num_classes=num_classes, **options)

    return build
