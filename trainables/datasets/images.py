"""Raw images -> model inputs: channels, the shorter-side resize and the centre crop.

An image file is first read as a viewer shows it (`as_viewed`: EXIF orientation, more
than 8 bits scaled to 8, transparency over white), in 8-bit grey or RGB.

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


# 16-bit integer modes (PNG, TIFF, PGM of 16 bits per pixel).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# Modes with an alpha channel; a palette, grey or RGB image can also name a transparent
# colour (`transparency` in its info).
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def as_viewed(image, channels: int):
    """A PIL image as a viewer shows it, 8-bit 'L' (`channels` 1) or 'RGB' (3).

    - EXIF orientation applied (a phone's rotated JPEG comes out upright);
    - more than 8 bits scaled, not clipped (PIL's convert clips at 255: a 16-bit
      gradient would become black and white): `eight_bit`;
    - transparency composited over white, as a page shows it (PIL's convert drops the
      alpha and shows the colour stored under it, often black);
    - every other mode as PIL converts it: 1-bit as 0/255, a palette through its
      colours, CMYK by PIL's plain formula (no ICC profile), YCbCr and the rest too;
    8-bit 'L' and 'RGB' images without orientation or transparency come out unchanged.
    """
    from PIL import ImageOps

    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # an EXIF block PIL cannot parse: shown as stored, as viewers do
        pass
    image = eight_bit(image)
    if image.mode in ALPHA_MODES or "transparency" in image.info:
        image = _over_white(image)
    return image.convert("L" if channels == 1 else "RGB")


def eight_bit(image):
    """An image of more than 8 bits per pixel as 8-bit 'L' by its value range, else as
    it is. 16-bit modes: 0..65535 -> 0..255 (/ 257, rounded). 'I' (32-bit integers): as
    16-bit when its values fit 0..65535 (how PIL opens many 16-bit files), else from its
    own minimum to maximum. 'F' (32-bit floats): 0..1 when its values fit there, else its
    own minimum to maximum; a NaN or infinite pixel is a ValueError (not an image)."""
    from PIL import Image

    if image.mode not in (*SIXTEEN_BIT_MODES, "I", "F"):
        return image
    pixels = np.asarray(image).astype(np.float64)
    if not np.isfinite(pixels).all():
        raise ValueError(f"{image.mode} image with NaN or infinite pixels")
    low, high = (pixels.min(), pixels.max()) if pixels.size else (0.0, 0.0)
    if image.mode in SIXTEEN_BIT_MODES or (image.mode == "I" and low >= 0 and high <= 65535):
        low, high = 0.0, 65535.0
    elif image.mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    scaled = (pixels - low) * (255 / (high - low)) if high > low else pixels * 0
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), "L")


def _over_white(image):
    """An image with transparency composited over white, as 'RGB'."""
    from PIL import Image

    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


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
