"""`glyphs`: the source task's 52 rendered letters as a target, from other renders.

Stored as float32 at 32x32: the renders carry noise added after the 8-bit drawing, so
uint8 would change them.
"""

from __future__ import annotations

from trainables.datasets.base import IMAGE_SIZE, TargetData
from trainables.datasets.images import store
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import SPLIT_SEED, assemble, split_pool
from trainables.glyphs import LETTERS, render_glyphs

GLYPH_TARGET_PER_CLASS = 100


@register("glyphs")
def load(request: Request) -> TargetData:
    # Rendered with the split's seed: other renders than the source task's (its own seed).
    images, labels = render_glyphs(GLYPH_TARGET_PER_CLASS * len(LETTERS), SPLIT_SEED, IMAGE_SIZE)
    held, pool = split_pool(
        request.name, LETTERS, labels, request.val_per_class, request.test_per_class
    )
    pixels, encoding = store(images, request.prep, divisor=1.0)
    return assemble(request.name, LETTERS, pixels, labels, held, pool, encoding)
