"""Augmentation of training batches (it turns the feature cache off: inputs change)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip", "shift")


def augment(x: torch.Tensor, kinds: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Random crop, shift and/or horizontal flip of a batch, drawn from `generator` so a
    seeded trial repeats exactly.

    `crop`: CIFAR-style, zero padding of 1/8 of the side (the mean after normalising).
    `shift`: a translation by up to 1/16 of the side with the image's edge pixels
    continued, so a background stays background (no grey frame): small offsets of where a
    character sits, the variation handwriting has.
    """
    if not kinds:
        return x
    unknown = set(kinds) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(
            f"unknown augmentation {sorted(unknown)}; allowed: {', '.join(AUGMENTATIONS)}"
        )
    n, _, height, _ = x.shape
    if "crop" in kinds:
        x = random_windows(x, max(1, height // 8), "constant", generator)
    if "shift" in kinds:
        x = random_windows(x, max(1, height // 16), "replicate", generator)
    if "flip" in kinds:
        flip = torch.rand(n, generator=generator, device=generator.device) < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    return x


def random_windows(x: torch.Tensor, pad: int, mode: str, generator) -> torch.Tensor:
    """Each image of `x` padded by `pad` on every side (`mode` of `F.pad`), then a window of
    its own size at a random offset from `generator`. All windows are cut in one gather
    on x's device: no offset is read back to the host."""
    n, channels, height, width = x.shape
    padded = F.pad(x, (pad,) * 4, mode=mode)
    offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator, device=generator.device)
    offsets = offsets.to(x.device)
    rows = (offsets[:, 0, None] + torch.arange(height, device=x.device)).view(n, 1, height, 1)
    cols = (offsets[:, 1, None] + torch.arange(width, device=x.device)).view(n, 1, 1, width)
    images = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    planes = torch.arange(channels, device=x.device).view(1, channels, 1, 1)
    return padded[images, planes, rows, cols]
