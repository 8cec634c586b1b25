"""Datasets and the fixed splits every trial of a study shares.

A target is split once, by a fixed seed, into a stratified test set, a stratified
validation set and a training pool. A training subset for (size, seed) takes `size`
examples of every class from the pool, so validation and test are disjoint from every
subset, and for one seed a smaller subset is contained in a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from trainables.glyphs import LETTERS, render_glyphs

TARGETS = ("digits",)
SOURCES = ("glyphs",)
IMAGE_SIZE = 32
# Grey-level statistics of the rendered source task, applied to source and target alike
# (the target is fed the way the pretrained network was trained).
GREY_MEAN = 0.15
GREY_STD = 0.29
SPLIT_SEED = 20240601  # fixed: every study sees the same val/test split of a target


@dataclass(frozen=True)
class Split:
    """Normalised images (N, C, H, W) float32 and labels (N,) int64, as numpy arrays."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.x), torch.from_numpy(self.y)


@dataclass(frozen=True)
class TargetData:
    name: str
    classes: tuple[str, ...]
    pool: Split
    val: Split
    test: Split

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return self.pool.x.shape[1]

    def max_size(self) -> int:
        """The largest per-class subset the pool supports (its smallest class)."""
        return int(np.bincount(self.pool.y, minlength=self.num_classes).min())

    def train_subset(self, size: int | None, seed: int) -> Split:
        """`size` pool examples of each class (all of the pool when `size` is None)."""
        if size is None:
            return self.pool
        if not 1 <= size <= self.max_size():
            raise ValueError(
                f"size must be 1..{self.max_size()} examples per class for {self.name} "
                f"(or 'all'), got {size}"
            )
        rng = np.random.default_rng(seed)
        picked = [
            rng.permutation(np.flatnonzero(self.pool.y == label))[:size]
            for label in range(self.num_classes)
        ]
        index = np.sort(np.concatenate(picked))
        return Split(self.pool.x[index], self.pool.y[index])


def normalise(images: np.ndarray) -> np.ndarray:
    """(N, H, W) grey images in [0, 1] -> (N, 1, H, W) standardised float32."""
    return ((images[:, None, :, :] - GREY_MEAN) / GREY_STD).astype(np.float32)


def _stratified_split(y: np.ndarray, per_class: int, rng: np.random.Generator):
    taken = np.concatenate(
        [rng.permutation(np.flatnonzero(y == label))[:per_class] for label in np.unique(y)]
    )
    rest = np.setdiff1d(np.arange(len(y)), taken)
    return np.sort(taken), rest


def split_target(name, classes, images, labels, val_per_class, test_per_class) -> TargetData:
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx, rest = _stratified_split(labels, test_per_class, rng)
    val_local, pool_local = _stratified_split(labels[rest], val_per_class, rng)
    val_idx, pool_idx = rest[val_local], rest[pool_local]
    x = normalise(images)
    return TargetData(
        name=name,
        classes=tuple(classes),
        pool=Split(x[pool_idx], labels[pool_idx]),
        val=Split(x[val_idx], labels[val_idx]),
        test=Split(x[test_idx], labels[test_idx]),
    )


def _digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (0..16), upsampled to 32x32 in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return big[:, 0].clamp(0, 1).numpy(), digits.target.astype(np.int64)


def load_target(name: str, val_per_class: int, test_per_class: int) -> TargetData:
    if name != "digits":
        raise ValueError(f"unknown target dataset {name!r}; allowed: {', '.join(TARGETS)}")
    images, labels = _digits_images()
    classes = [str(d) for d in range(10)]
    smallest = int(np.bincount(labels).min())
    if val_per_class + test_per_class >= smallest:
        raise ValueError(
            f"val_per_class + test_per_class must be below {smallest} for digits "
            f"(its smallest class), got {val_per_class} + {test_per_class}"
        )
    return split_target(name, classes, images, labels, val_per_class, test_per_class)


@lru_cache(maxsize=2)  # rendering 40k letters takes ~15 s; every architecture reuses them
def load_source(name: str, n_images: int, seed: int) -> tuple[Split, Split, tuple[str, ...]]:
    """The source task as (train, val) splits; val is a held-out 10%."""
    if name != "glyphs":
        raise ValueError(f"unknown source dataset {name!r}; allowed: {', '.join(SOURCES)}")
    images, labels = render_glyphs(n_images, seed, IMAGE_SIZE)
    x = normalise(images)
    n_val = max(len(LETTERS), n_images // 10)
    return Split(x[n_val:], labels[n_val:]), Split(x[:n_val], labels[:n_val]), tuple(LETTERS)
