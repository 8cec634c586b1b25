from __future__ import annotations

import numpy as np
import pytest
import torch

from trainables.datasets import load_target
from trainables.glyphs import LETTERS, render_glyphs


@pytest.fixture(scope="module")
def digits():
    return load_target("digits", val_per_class=30, test_per_class=50)


def _rows(split) -> set[bytes]:
    return {row.tobytes() for row in split.x}


def test_splits_are_fixed_stratified_and_disjoint(digits):
    assert digits.num_classes == 10 and digits.pool.x.shape[1:] == (1, 32, 32)
    assert np.all(np.bincount(digits.test.y) == 50)
    assert np.all(np.bincount(digits.val.y) == 30)
    assert len(digits.pool) + len(digits.val) + len(digits.test) == 1797
    assert not _rows(digits.pool) & _rows(digits.val)
    assert not _rows(digits.pool) & _rows(digits.test)
    assert not _rows(digits.val) & _rows(digits.test)
    again = load_target("digits", val_per_class=30, test_per_class=50)
    assert np.array_equal(again.test.y, digits.test.y) and np.array_equal(
        again.test.x, digits.test.x
    )


def test_subsets_per_seed_are_stratified_nested_and_reproducible(digits):
    small, large = digits.train_subset(2, seed=3), digits.train_subset(10, seed=3)
    assert np.all(np.bincount(small.y, minlength=10) == 2)
    assert np.all(np.bincount(large.y, minlength=10) == 10)
    assert _rows(small) <= _rows(large)
    assert np.array_equal(digits.train_subset(2, seed=3).x, small.x)
    assert not np.array_equal(digits.train_subset(2, seed=4).x, small.x)
    assert len(digits.train_subset(None, seed=0)) == len(digits.pool)


def test_a_size_beyond_the_pool_names_the_allowed_range(digits):
    with pytest.raises(ValueError, match=r"size must be 1\.\.\d+ .* got 500"):
        digits.train_subset(500, seed=0)


def test_glyphs_are_deterministic_balanced_letters():
    images, labels = render_glyphs(104, seed=7)
    assert images.shape == (104, 32, 32) and images.dtype == np.float32
    assert np.all(np.bincount(labels, minlength=len(LETTERS)) == 2)
    again, _ = render_glyphs(104, seed=7)
    other, _ = render_glyphs(104, seed=8)
    assert np.array_equal(images, again) and not np.array_equal(images, other)
    assert 0.02 < images.mean() < 0.5  # a letter was drawn, not an empty or full canvas


def test_digits_kept_as_stored_give_the_inputs_of_converting_at_load():
    """The trial's inputs are bit for bit those of the former load-time conversion: 8x8
    levels / 16, upsampled to 32x32, clamped, then resized to the input size, normalised."""
    from sklearn.datasets import load_digits

    from trainables.datasets import Preprocessing, normalise
    from trainables.datasets.images import resize_and_crop
    from trainables.datasets.splits import split_pool

    prep = Preprocessing(size=48, channels=3)
    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    big = resize_and_crop(small, 32).clamp(0, 1).expand(-1, 3, -1, -1)
    at_load = normalise(resize_and_crop(big, 48).clamp(0, 1).numpy(), prep)
    held, pool = split_pool("digits", [str(d) for d in range(10)], digits.target, 10, 20)
    target = load_target("digits", 10, 20, prep=prep)
    assert target.pool.data.dtype == np.uint8  # what the object store holds
    assert np.array_equal(target.pool.x, at_load[pool])
    assert np.array_equal(target.test.tensors()[0].numpy(), at_load[held["test"]])
