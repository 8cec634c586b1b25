"""One module per architecture family; importing this package registers them all."""

from trainables.archs import (  # noqa: F401
    alexnet,
    densenet,
    googlenet,
    inception,
    lenet,
    mobilenet,
    resnet,
    timm_models,
    vgg,
    zfnet,
)
