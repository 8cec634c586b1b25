"""The fixed split of a target into held-out parts (test, validation) and a training pool.

Every loader splits through `carve`, with one generator seeded by `SPLIT_SEED`, so every
study sees the same validation and test sets of a target. Each held-out part takes
`per_class` examples of every class, drawn in the order the parts are given, from what
the earlier parts left. The order is part of the result: a target given as one pool
carves test first, then validation (`split_pool`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from trainables.datasets.base import DataError, Split, TargetData, shown
from trainables.datasets.images import Encoding

SPLIT_SEED = 20240601  # fixed: every study sees the same val/test split of a target


def split_rng() -> np.random.Generator:
    """A fresh generator for one target's split (share it when a target splits twice)."""
    return np.random.default_rng(SPLIT_SEED)


def _stratified(y: np.ndarray, per_class: int, rng: np.random.Generator):
    """Sorted indices of `per_class` random examples of every class, and the rest."""
    taken = np.concatenate(
        [rng.permutation(np.flatnonzero(y == label))[:per_class] for label in np.unique(y)]
    )
    rest = np.setdiff1d(np.arange(len(y)), taken)
    return np.sort(taken), rest


def carve(
    labels: np.ndarray, parts: dict[str, int], rng: np.random.Generator | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Indices of each held-out part ({part: per_class}, carved in order) and of the rest.

    `rng` defaults to a fresh `split_rng()`; a target whose parts come from different
    arrays (a dataset's own test split) passes one generator to both calls.
    """
    rng = split_rng() if rng is None else rng
    rest = np.arange(len(labels))
    held = {}
    for part, per_class in parts.items():
        local, kept = _stratified(labels[rest], per_class, rng)
        held[part] = rest[local]
        rest = rest[kept]
    return held, rest


def check_held_out(
    name: str, classes: Sequence[str], labels: np.ndarray, held_out: int, what: str
) -> None:
    """DataError unless every class keeps a training example after `held_out` are taken."""
    counts = np.bincount(labels, minlength=len(classes))
    for label, count in enumerate(counts):
        if count <= held_out:
            raise DataError(
                f"{shown(name)}: class {classes[label]!r} has {count} images, too few for {what} "
                f"({held_out}) plus at least 1 training example"
            )


def split_pool(
    name: str, classes: Sequence[str], labels: np.ndarray, val_per_class: int, test_per_class: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """A target given as one pool: checked, then test carved first, then validation."""
    check_held_out(
        name, classes, labels, val_per_class + test_per_class, "val_per_class + test_per_class"
    )
    return carve(labels, {"test": test_per_class, "val": val_per_class})


def assemble(
    name: str,
    classes: Sequence[str],
    x: np.ndarray,
    labels: np.ndarray,
    held: dict[str, np.ndarray],
    pool: np.ndarray,
    encoding: Encoding | None = None,
) -> TargetData:
    """The target whose splits are the given indices into one array of images (model
    inputs, or stored images with their `encoding`: trainables.datasets.images.store)."""
    whole = Split(x, labels, encoding)
    return TargetData(
        name=name,
        classes=tuple(classes),
        pool=whole.take(pool),
        val=whole.take(held["val"]),
        test=whole.take(held["test"]),
    )
