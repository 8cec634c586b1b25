"""Raw images -> model inputs: channels, the shorter-side resize and the centre crop.

A target is kept as stored (`store`: uint8 at the images' own resolution, capped at what
the trial needs) and becomes model inputs inside the trial (`Encoding.decode`, on the
trial's GPU where it has one): the object store then holds 1 byte per stored pixel
instead of 4 per input pixel (CIFAR-10 at 96 px: 36x fewer bytes). Decoding runs the very
operations loading ran before, in the same order, so the inputs are the same floats.

`resize_and_crop` is the one place that decides the geometry of every target image: the
shorter side is scaled to `short` (no side ends below it) and the centre `size` x `size`
square is cut out. It has two resampling paths on purpose. Arrays (digits, glyphs,
torchvision datasets) are torch tensors resized by `F.interpolate` (bilinear, antialiased
when shrinking); image files are PIL images resized by PIL's BILINEAR filter. The two
resamplers give different numbers (PIL works on 8-bit pixels and widens its filter when
shrinking), so merging them would change every study's inputs; only the geometry is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import numpy as np
import torch
import torch.nn.functional as F

from trainables.datasets.base import Preprocessing

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
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype, device=rgb.device)
    weights = weights.view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == 3 and channels == 1:
        return _luma(x)
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    return x


@dataclass(frozen=True)
class Encoding:
    """How stored target images become model inputs: stored value / `divisor` is in [0, 1];
    `upsample` first resizes to that square (digits: 8x8 -> 32x32, the resolution every
    preprocessing of digits starts from); then channels, resize and crop to `prep` (unless
    `resized`: done at load) and normalisation."""

    prep: Preprocessing
    divisor: float = 255.0
    upsample: int | None = None
    resized: bool = False

    def unit(self, pixels: torch.Tensor) -> torch.Tensor:
        """Stored images (N, C, H, W) -> floats in [0, 1] at the input size and channels."""
        # A tensor divisor: CUDA turns division by a Python scalar into a multiplication
        # by its reciprocal, which rounds differently from loading's division.
        x = pixels.to(torch.float32) / torch.tensor(self.divisor, device=pixels.device)
        if self.upsample:
            x = resize_and_crop(x, self.upsample).clamp(0, 1)
        if self.resized:
            return x
        x = resize_and_crop(_channels(x, self.prep.channels), self.prep.size, self.prep.resize)
        return x.clamp(0, 1)

    def decode(self, pixels: torch.Tensor, device=None, chunk: int = 2048) -> torch.Tensor:
        """Model inputs (N, channels, size, size) float32 on `device` (default: the
        pixels'), converted in chunks to bound the memory."""
        device = torch.device(device) if device is not None else pixels.device
        mean, std = (torch.from_numpy(s).to(device) for s in self.prep.stats())
        size = self.prep.size
        shape = (len(pixels), self.prep.channels, size, size)
        out = torch.empty(shape, dtype=torch.float32, device=device)
        for start in range(0, len(pixels), chunk):
            x = self.unit(pixels[start : start + chunk].to(device))
            out[start : start + chunk] = (x - mean) / std  # as base.normalise
        return out


def store(
    images: np.ndarray, prep: Preprocessing, divisor: float = 255.0, upsample: int | None = None
) -> tuple[np.ndarray, Encoding]:
    """Images (N, H, W) or (N, C, H, W) as loaded (uint8, or float32 for data that is not
    8-bit) -> (what the object store holds, its Encoding).

    Kept as they are while their shorter side is at most the trial's resize; larger images
    are resized here, exactly as the trial would, and kept as float32 at the input size
    (quantising them back to uint8 would change the inputs).
    """
    if images.ndim == 3:
        images = images[:, None]
    encoding = Encoding(prep, divisor, upsample)
    if min(images.shape[-2:]) <= (prep.resize or prep.size):
        return np.ascontiguousarray(images), encoding
    unit = [
        encoding.unit(torch.from_numpy(np.ascontiguousarray(images[i : i + 2048]))).numpy()
        for i in range(0, len(images), 2048)
    ]
    return np.concatenate(unit), Encoding(prep, 1.0, resized=True)


def convert_array(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Images in [0, 1] as (N, H, W) grey or (N, C, H, W) (C 1 or 3) -> normalised model
    inputs (N, prep.channels, size, size), all at once (a target kept as stored: `store`)."""
    if images.ndim == 3:
        images = images[:, None]
    pixels = torch.from_numpy(np.ascontiguousarray(images, np.float32))
    return Encoding(prep, divisor=1.0).decode(pixels).numpy()
