"""`digits`: scikit-learn's bundled 8x8 handwritten digits, as one pool split here."""

from __future__ import annotations

import numpy as np
import torch

from trainables.datasets.base import IMAGE_SIZE, TargetData
from trainables.datasets.images import convert_array, resize_and_crop
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import assemble, split_pool


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits (0..16 grey levels), upsampled to 32x32 in [0, 1] (the stored
    resolution every preprocessing starts from), and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    big = resize_and_crop(small, IMAGE_SIZE)
    return big[:, 0].clamp(0, 1).numpy(), digits.target.astype(np.int64)


@register("digits")
def load(request: Request) -> TargetData:
    images, labels = digits_images()
    classes = [str(d) for d in range(10)]
    held, pool = split_pool(
        request.name, classes, labels, request.val_per_class, request.test_per_class
    )
    return assemble(request.name, classes, convert_array(images, request.prep), labels, held, pool)
