"""`digits`: scikit-learn's bundled 8x8 handwritten digits, as one pool split here.

Stored as they come (8x8, grey levels 0..16 in uint8: 64 bytes an image); the trial
upsamples them to 32x32 first, the resolution every preprocessing of digits starts from.
"""

from __future__ import annotations

import numpy as np

from trainables.datasets.base import IMAGE_SIZE, TargetData
from trainables.datasets.images import store
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import assemble, split_pool

DIGIT_LEVELS = 16.0  # grey levels 0..16


def digits_pixels() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 digits as stored, (N, 1, 8, 8) uint8 grey levels 0..16, and their labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.images.astype(np.uint8)[:, None], digits.target.astype(np.int64)


@register("digits")
def load(request: Request) -> TargetData:
    images, labels = digits_pixels()
    classes = [str(d) for d in range(10)]
    held, pool = split_pool(
        request.name, classes, labels, request.val_per_class, request.test_per_class
    )
    pixels, encoding = store(images, request.prep, divisor=DIGIT_LEVELS, upsample=IMAGE_SIZE)
    return assemble(request.name, classes, pixels, labels, held, pool, encoding)
