"""The source task that study-pretrained weights learn: rendered glyphs (trainables.glyphs)."""

from __future__ import annotations

from functools import lru_cache

from trainables.datasets.base import IMAGE_SIZE, Split, normalise
from trainables.glyphs import LETTERS, render_glyphs

SOURCES = ("glyphs",)


@lru_cache(maxsize=2)  # rendering 40k letters takes ~15 s; every architecture reuses them
def load_source(name: str, n_images: int, seed: int) -> tuple[Split, Split, tuple[str, ...]]:
    """The source task as (train, val) splits; val is a held-out 10%."""
    if name != "glyphs":
        raise ValueError(f"unknown source dataset {name!r}; allowed: {', '.join(SOURCES)}")
    images, labels = render_glyphs(n_images, seed, IMAGE_SIZE)
    x = normalise(images)
    n_val = max(len(LETTERS), n_images // 10)
    return Split(x[n_val:], labels[n_val:]), Split(x[:n_val], labels[:n_val]), tuple(LETTERS)
