"""`torchvision:<name>`: a torchvision dataset under a local root, downloaded only when asked.

The official test split gives the test set; validation is carved out of the training
split. (This module is `trainables.datasets.torchvision`; its absolute imports of
`torchvision` still reach the real package.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainables.datasets.base import DataError, Split, TargetData, cut_middle, shown
from trainables.datasets.images import store
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import carve, check_held_out, split_rng

TORCHVISION_DATASETS = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST")


def _read(request: Request, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 images (N, C, H, W), labels, classes) of the train or the test split."""
    from torchvision import datasets

    try:
        data = getattr(datasets, request.arg)(
            root=request.root, train=train, download=request.download
        )
    except RuntimeError as error:
        hint = "" if request.download else " (set target.download: true to download it)"
        raise DataError(
            f"{request.name}: not found under {shown(Path(request.root).resolve())}: "
            f"{cut_middle(str(error).splitlines()[0] if str(error) else type(error).__name__)}"
            f"{hint}"
        ) from None
    images = np.asarray(data.data)
    images = images.transpose(0, 3, 1, 2) if images.ndim == 4 else images[:, None]
    return images, np.asarray(data.targets, dtype=np.int64), list(data.classes)


@register("torchvision", argument="<name>", choices=TORCHVISION_DATASETS)
def load(request: Request) -> TargetData:
    train_x, train_y, classes = _read(request, train=True)
    test_x, test_y, _ = _read(request, train=False)
    return from_arrays(request, (train_x, train_y), (test_x, test_y), classes)


def from_arrays(request: Request, train: tuple, test: tuple, classes: list[str]) -> TargetData:
    """The target from the dataset's (uint8 images (N, C, H, W), labels) train and test
    splits: kept as stored (CIFAR-10: 32x32 RGB, 3 KB an image), converted in the trial."""
    (train_x, train_y), (test_x, test_y) = train, test
    check_held_out(request.name, classes, train_y, request.val_per_class, "val_per_class")
    rng = split_rng()  # one generator: test from the test split, then val from train
    carved, _ = carve(test_y, {"test": request.test_per_class}, rng)
    held, pool = carve(train_y, {"val": request.val_per_class}, rng)
    val, test_index = held["val"], carved["test"]
    train_x, encoding = store(train_x, request.prep)
    test_x, _ = store(test_x[test_index], request.prep)
    return TargetData(
        name=request.name,
        classes=tuple(classes),
        pool=Split(train_x[pool], train_y[pool], encoding),
        val=Split(train_x[val], train_y[val], encoding),
        test=Split(test_x, test_y[test_index], encoding),
    )
