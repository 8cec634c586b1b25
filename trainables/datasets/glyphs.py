"""`glyphs`: the source task's 52 rendered letters as a target, from other renders."""

from __future__ import annotations

from trainables.datasets.base import IMAGE_SIZE, TargetData
from trainables.datasets.images import convert_array
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
    return assemble(request.name, LETTERS, convert_array(images, request.prep), labels, held, pool)
