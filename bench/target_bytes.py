"""Object-store bytes of a study's target: what it holds now against float32 model inputs.

`tune.with_parameters` puts the target in Ray's object store, which serialises it with
pickle protocol 5 (numpy arrays as out-of-band buffers); this measures exactly that. It
loads the default study's target (digits) for real, and runs CIFAR-10's shape (50000 +
10000 uint8 images of 32x32x3, random pixels: CIFAR itself is not downloaded) through the
torchvision loader's own code path with the `gpu-cluster` preset's preprocessing. "float32
at input size" is what every image costs as a model input: channels x size^2 x 4 bytes.

    python bench/target_bytes.py
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pickle

import numpy as np

from study.config.files import load_preset
from study.stages.load import load_checked_target, target_preprocessing
from trainables.datasets.registry import Request
from trainables.datasets.torchvision import from_arrays


def object_store_bytes(value) -> int:
    buffers: list[pickle.PickleBuffer] = []
    inband = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return len(inband) + sum(buffer.raw().nbytes for buffer in buffers)


def float32_inputs_bytes(target) -> int:
    images = len(target.pool) + len(target.val) + len(target.test)
    return images * target.in_channels * target.image_size**2 * 4


def fake_cifar_target(preset: str = "gpu-cluster"):
    """CIFAR-10's shape through `from_arrays`, with the preset's preprocessing (no torch
    cache needed: the preprocessing is read from torchvision's weight enum)."""
    config = load_preset(preset)
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (50000, 3, 32, 32), dtype=np.uint8), np.arange(50000) % 10
    test = rng.integers(0, 256, (10000, 3, 32, 32), dtype=np.uint8), np.arange(10000) % 10
    request = Request(
        "torchvision",
        "CIFAR10",
        config.target.val_per_class,
        config.target.test_per_class,
        target_preprocessing(config),
        config.target.root,
        False,
    )
    classes = [f"class{i}" for i in range(10)]
    return from_arrays(request, train, test, classes)


def main() -> None:
    targets = {
        "default (digits, 32 px)": load_checked_target(load_preset("default")),
        "gpu-cluster (CIFAR-10 shape, 96 px)": fake_cifar_target(),
    }
    for name, target in targets.items():
        stored, before = object_store_bytes(target), float32_inputs_bytes(target)
        images = len(target.pool) + len(target.val) + len(target.test)
        print(
            f"{name}: {images} images; object store {stored:,} bytes; as float32 model "
            f"inputs {before:,} bytes; {before / stored:.1f}x smaller"
        )


if __name__ == "__main__":
    main()
