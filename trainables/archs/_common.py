"""Shared builder for torchvision-backed entries.

torchvision's builders are called with `weights=None` (nothing is downloaded at build
time); pretrained weights are loaded afterwards by `trainables.weights`, into the same
module tree, so every state-dict key stays torchvision's.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from trainables.registry import (
    Builder,
    adapt_first_conv,
    get_module,
    resize_small_inputs,
    set_module,
)

# Input sizes below this are not considered: the service's smallest images are 32x32
# (LeNet's inputs, CIFAR). `min_input_size` is the smallest working size at or above it.
SMALLEST_IMAGE = 32


def tv_builder(
    make: Callable[..., nn.Module],
    first_conv: str,
    min_input_size: int = SMALLEST_IMAGE,
    **kwargs,
) -> Builder:
    """A registry builder around a torchvision model function or class.

    The first conv is rebuilt for 1-channel input, and an architecture whose smallest
    working input is above 32 resizes smaller inputs up to it (a forward pre-hook, so the
    module tree and state-dict keys are unchanged).
    """

    def build(num_classes: int, in_channels: int) -> nn.Module:
        model = make(num_classes=num_classes, **kwargs)
        set_module(model, first_conv, adapt_first_conv(get_module(model, first_conv), in_channels))
        if min_input_size > SMALLEST_IMAGE:
            resize_small_inputs(model, min_input_size)
        return model

    return build
