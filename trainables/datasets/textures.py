"""`textures`: ten classes of procedural grey textures, a target far from rendered letters.

The distant target of the similarity study (the near one is `digits`): oriented gratings,
checkerboards, rings, spokes, blobs and noise of two spectra. No strokes, no closed
shapes on an empty background, texture over the whole image: little of what the glyph
source teaches applies. Each image draws its frequency, phase, orientation jitter,
contrast, centre and added noise, so a class is a family, not a template. Generated
offline, deterministic per seed (the loader uses the split's fixed seed); stored as
uint8 at 32x32 (1 KiB an image).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from trainables.datasets.base import IMAGE_SIZE, TargetData
from trainables.datasets.images import store
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import SPLIT_SEED, assemble, split_pool

TEXTURES_PER_CLASS = 150
CLASSES = (
    "grating-0",  # vertical stripes (the phase runs along x)
    "grating-45",
    "grating-90",  # horizontal stripes
    "grating-135",
    "checkerboard",
    "rings",
    "spokes",
    "blobs",
    "smooth-noise",  # low-pass: clouds
    "fine-noise",  # high-pass: grain
)


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    return xs - (size - 1) / 2, ys - (size - 1) / 2


def _grating(rng, size, angle):
    x, y = _grid(size)
    theta = np.deg2rad(angle + rng.uniform(-12, 12))
    freq = rng.uniform(0.08, 0.2)  # cycles per pixel: periods of 5 to 12 pixels
    return np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)) + rng.uniform(0, 6.3))


def _checkerboard(rng, size):
    x, y = _grid(size)
    theta = np.deg2rad(rng.uniform(0, 90))
    u, v = x * np.cos(theta) + y * np.sin(theta), -x * np.sin(theta) + y * np.cos(theta)
    freq = rng.uniform(0.06, 0.14)
    phase = rng.uniform(0, 6.3, 2)
    return np.sign(
        np.sin(2 * np.pi * freq * u + phase[0]) * np.sin(2 * np.pi * freq * v + phase[1])
    )


def _centre(rng, size):
    x, y = _grid(size)
    dx, dy = rng.uniform(-size / 5, size / 5, 2)
    return x - dx, y - dy


def _rings(rng, size):
    x, y = _centre(rng, size)
    return np.sin(2 * np.pi * rng.uniform(0.08, 0.18) * np.hypot(x, y) + rng.uniform(0, 6.3))


def _spokes(rng, size):
    x, y = _centre(rng, size)
    return np.sin(int(rng.integers(4, 9)) * np.arctan2(y, x) + rng.uniform(0, 6.3))


def _blobs(rng, size):
    x, y = _grid(size)
    image = np.zeros((size, size))
    for _ in range(int(rng.integers(4, 9))):
        cx, cy = rng.uniform(-size / 2, size / 2, 2)
        sigma = rng.uniform(1.5, 3.5)
        image += np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * sigma**2))
    return image


def _noise(rng, size, smooth: bool):
    white = rng.normal(0, 1, (size, size))
    low = gaussian_filter(white, rng.uniform(2.0, 3.5), mode="wrap")
    return low if smooth else white - gaussian_filter(white, 1.0, mode="wrap")


def _draw(label: int, rng: np.random.Generator, size: int) -> np.ndarray:
    name = CLASSES[label]
    if name.startswith("grating-"):
        return _grating(rng, size, float(name.split("-")[1]))
    if name == "checkerboard":
        return _checkerboard(rng, size)
    if name in ("smooth-noise", "fine-noise"):
        return _noise(rng, size, smooth=name == "smooth-noise")
    return {"rings": _rings, "spokes": _spokes, "blobs": _blobs}[name](rng, size)


def render_textures(
    per_class: int, seed: int, size: int = IMAGE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    """`per_class` textures of every class, shuffled: (uint8 images (N, size, size), labels)."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    rng.shuffle(labels)
    images = np.empty((len(labels), size, size), np.uint8)
    for i, label in enumerate(labels):
        pattern = _draw(int(label), rng, size)
        pattern = (pattern - pattern.min()) / max(np.ptp(pattern), 1e-9)  # to [0, 1]
        contrast, mean = rng.uniform(0.5, 1.0), rng.uniform(0.35, 0.65)
        image = (
            mean + contrast * (pattern - 0.5) + rng.normal(0, rng.uniform(0, 0.06), pattern.shape)
        )
        images[i] = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    return images, labels.astype(np.int64)


@register("textures")
def load(request: Request) -> TargetData:
    images, labels = render_textures(TEXTURES_PER_CLASS, SPLIT_SEED)
    held, pool = split_pool(
        request.name, list(CLASSES), labels, request.val_per_class, request.test_per_class
    )
    pixels, encoding = store(images[:, None], request.prep, divisor=255.0)
    return assemble(request.name, list(CLASSES), pixels, labels, held, pool, encoding)
