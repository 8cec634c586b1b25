"""Raw images -> model inputs: channels, the shorter-side resize and the centre crop.

`resize_and_crop` is the one place that decides the geometry of every target image: the
shorter side is scaled to `short` (no side ends below it) and the centre `size` x `size`
square is cut out. It has two resampling paths on purpose. Arrays (digits, glyphs,
torchvision datasets) are torch tensors resized by `F.interpolate` (bilinear, antialiased
when shrinking); image files are PIL images resized by PIL's BILINEAR filter. The two
resamplers give different numbers (PIL works on 8-bit pixels and widens its filter when
shrinking), so merging them would change every study's inputs; only the geometry is shared.
"""

from __future__ import annotations

from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from trainables.datasets.base import Preprocessing, normalise

ImageT = TypeVar("ImageT")  # a torch tensor (N, C, H, W) or a PIL image


class Geometry(NamedTuple):
    """The resized (height, width), the crop's top-left corner, and the scale applied."""

    height: int
    width: int
    top: int
    left: int
    scale: float


def geometry(height: int, width: int, size: int, short: int) -> Geometry:
    """Shorter side to `short`, longer side in proportion, then a centred `size` crop."""
    scale = short / min(height, width)
    resized = (max(short, round(height * scale)), max(short, round(width * scale)))
    return Geometry(*resized, (resized[0] - size) // 2, (resized[1] - size) // 2, scale)


def resize_and_crop(image: ImageT, size: int, short: int | None = None) -> ImageT:
    """`image` with its shorter side resized to `short` (default `size`), centre-cropped to
    `size` x `size`. A tensor is resized by torch, a PIL image by PIL (see the module note);
    an image already at the resized shape is not resampled, only cropped."""
    short = short or size
    if isinstance(image, torch.Tensor):
        height, width = image.shape[-2:]
        fit = geometry(height, width, size, short)
        if (fit.height, fit.width) != (height, width):
            image = F.interpolate(
                image,
                size=(fit.height, fit.width),
                mode="bilinear",
                align_corners=False,
                antialias=fit.scale < 1,
            )
        return image[..., fit.top : fit.top + size, fit.left : fit.left + size]
    from PIL import Image

    width, height = image.size
    fit = geometry(height, width, size, short)
    if (fit.width, fit.height) != (width, height):
        image = image.resize((fit.width, fit.height), Image.BILINEAR)
    return image.crop((fit.left, fit.top, fit.left + size, fit.top + size))


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, as PIL's convert('L')."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == 3 and channels == 1:
        return _luma(x)
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    return x


def convert_array(images: np.ndarray, prep: Preprocessing, chunk: int = 2048) -> np.ndarray:
    """Images in [0, 1] as (N, H, W) grey or (N, C, H, W) (C 1 or 3) -> normalised model
    inputs (N, prep.channels, size, size); converted in chunks to bound the memory."""
    if images.ndim == 3:
        images = images[:, None]
    out = np.empty((len(images), prep.channels, prep.size, prep.size), np.float32)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk], np.float32))
        x = resize_and_crop(_channels(x, prep.channels), prep.size, prep.resize)
        out[start : start + chunk] = x.clamp(0, 1).numpy()
    return normalise(out, prep)
