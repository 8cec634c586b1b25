"""Augmentation of training batches (it turns the feature cache off: inputs change)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

AUGMENTATIONS = ("crop", "flip")


def augment(x: torch.Tensor, kinds: tuple[str, ...], generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding of 1/8 of the side, i.e. the mean after normalising) and/or
    horizontal flip of a batch, drawn from `generator` so a seeded trial repeats exactly."""
    if not kinds:
        return x
    unknown = set(kinds) - set(AUGMENTATIONS)
    if unknown:
        raise ValueError(f"unknown augmentation {sorted(unknown)}; allowed: crop, flip")
    n, _, height, width = x.shape
    if "crop" in kinds:
        pad = max(1, height // 8)
        padded = F.pad(x, (pad, pad, pad, pad))
        offsets = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator)
        x = torch.stack(
            [
                padded[i, :, int(dy) : int(dy) + height, int(dx) : int(dx) + width]
                for i, (dy, dx) in enumerate(offsets)
            ]
        )
    if "flip" in kinds:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip.to(x.device).view(-1, 1, 1, 1), x.flip(-1), x)
    return x
