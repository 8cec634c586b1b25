"""What every target dataset produces and how its images are normalised.

`Preprocessing` says how raw images become model inputs (channels, size, normalisation);
`TargetData` holds the fixed pool/validation/test splits every trial of a study shares
(images as stored, made model inputs inside the trial);
`DataError` is bad target data, one line naming the file or class and the problem (the
driver loads the target before any trial starts, so it ends the study with exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from trainables.contract import ALL

if TYPE_CHECKING:  # images.py imports this module
    from trainables.datasets.images import Encoding

IMAGE_SIZE = 32
# Grey-level statistics of the rendered source task, applied to source and target alike
# (the target is fed the way the pretrained network was trained).
GREY_MEAN = 0.15
GREY_STD = 0.29


# A name longer than this, in a message, keeps its start and end around '...'.
LONGEST_NAME = 200


def shown(name: object, longest: int = LONGEST_NAME) -> str:
    """A file, folder or class name for a one-line message: as it is when every character
    is printable, else quoted with its control characters escaped (repr: a newline shows
    as \\n, an undecodable byte as \\udcXX); over `longest` characters, the middle cut
    out ('...'), keeping the end, where a path's file name is."""
    text = str(name)
    return cut_middle(text if text.isprintable() else repr(text), longest)


def cut_middle(text: str, longest: int = LONGEST_NAME) -> str:
    """`text`, or when it is over `longest` characters its start and end around '...'."""
    if len(text) <= longest:
        return text
    head = (longest - 3) // 3
    return f"{text[:head]}...{text[len(text) - (longest - 3 - head) :]}"


def one_line(message: str) -> str:
    """`message` with every character that is not printable escaped (one line, whatever
    a name or an error from a library it holds)."""
    if message.isprintable():
        return message
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


class DataError(ValueError):
    """Bad target data: the message is one line naming the file or class and the problem
    (names through `shown`; anything else not printable is escaped here, so it stays one
    line whatever a file name or a library's error holds)."""

    def __init__(self, message: str):
        super().__init__(one_line(str(message)))


@dataclass(frozen=True)
class Preprocessing:
    """How raw images become model inputs: channels, size, normalisation."""

    size: int = IMAGE_SIZE
    channels: int = 1
    mean: tuple[float, ...] = (GREY_MEAN,)
    std: tuple[float, ...] = (GREY_STD,)
    resize: int | None = None  # shorter side before the centre crop (None: `size`)

    def __post_init__(self):
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if self.size < 1 or (self.resize is not None and self.resize < self.size):
            raise ValueError(f"bad input size {self.size} / resize {self.resize}")

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std; RGB statistics for grey input are averaged."""
        mean, std = np.asarray(self.mean, np.float32), np.asarray(self.std, np.float32)
        if len(mean) != self.channels:
            mean = np.full(self.channels, mean.mean(), np.float32)
            std = np.full(self.channels, std.mean(), np.float32)
        return mean.reshape(1, -1, 1, 1), std.reshape(1, -1, 1, 1)


def preprocessing_for(weights: str, size: int = IMAGE_SIZE, channels: int | None = None):
    """The preprocessing that matches a weight source (see trainables.weights).

    torchvision weights bring their own normalisation (ImageNet's mean and std) and their
    resize-to-crop ratio (e.g. 256 -> 224), applied at the study's input size; everything
    else is fed like the rendered source task it was pretrained on (grey levels).
    """
    kind, _, arg = weights.partition(":")
    if kind != "torchvision":
        return Preprocessing(size=size, channels=channels or 1)
    from torchvision.models import get_weight

    transform = get_weight(arg).transforms()
    ratio = transform.resize_size[0] / transform.crop_size[0]
    return Preprocessing(
        size=size,
        channels=channels or 3,
        mean=tuple(transform.mean),
        std=tuple(transform.std),
        resize=max(size, round(size * ratio)),
    )


def normalise(images: np.ndarray, prep: Preprocessing | None = None) -> np.ndarray:
    """Images in [0, 1], (N, H, W) grey or (N, C, H, W) -> standardised float32 (N, C, H, W)."""
    prep = prep or Preprocessing(size=images.shape[-1])
    if images.ndim == 3:
        images = images[:, None]
    mean, std = prep.stats()
    return ((images - mean) / std).astype(np.float32)


@dataclass(frozen=True)
class Split:
    """Images and labels (N,) int64, as numpy arrays. `data` holds the model inputs
    themselves (N, C, H, W) float32, or, with an `encoding`, the images as stored (uint8 at
    their own resolution: what the object store carries), which `tensors` turns into model
    inputs wherever it is called (trainables.datasets.images.Encoding)."""

    data: np.ndarray
    y: np.ndarray
    encoding: Encoding | None = None

    def __len__(self) -> int:
        return len(self.y)

    @property
    def channels(self) -> int:
        return self.encoding.prep.channels if self.encoding else self.data.shape[1]

    @property
    def image_size(self) -> int:
        return self.encoding.prep.size if self.encoding else self.data.shape[-1]

    @property
    def x(self) -> np.ndarray:
        """The model inputs (N, C, H, W) float32, made on the CPU."""
        return self.tensors()[0].numpy()

    def tensors(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(model inputs, labels) on `device` (default: the CPU)."""
        x, y = torch.from_numpy(self.data), torch.from_numpy(self.y)
        if self.encoding is not None:
            return self.encoding.decode(x, device), y.to(device)
        return x.to(device), y.to(device)

    def take(self, index: np.ndarray) -> Split:
        return Split(self.data[index], self.y[index], self.encoding)

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.y.nbytes


@dataclass(frozen=True)
class TargetData:
    """A target split once, by a fixed seed, into a training pool, validation and test.

    A training subset for (size, seed) takes `size` examples of every class from the
    pool, so validation and test are disjoint from every subset, and for one seed a
    smaller subset is contained in a larger one.
    """

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
        return self.pool.channels

    @property
    def image_size(self) -> int:
        return self.pool.image_size

    @property
    def nbytes(self) -> int:
        """The bytes of its arrays: what a trial's object-store copy of the target holds."""
        return self.pool.nbytes + self.val.nbytes + self.test.nbytes

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.pool.y, minlength=self.num_classes)

    def max_size(self) -> int:
        """The largest per-class subset the pool supports (its smallest class)."""
        return int(self.class_counts().min())

    def smallest_class(self) -> str:
        return self.classes[int(self.class_counts().argmin())]

    def train_subset(self, size: int | None, seed: int) -> Split:
        """`size` pool examples of each class (all of the pool when `size` is None)."""
        if size is None:
            return self.pool
        if not 1 <= size <= self.max_size():
            raise ValueError(
                f"size must be 1..{self.max_size()} examples per class for {self.name} "
                f"(or '{ALL}'), got {size}"
            )
        rng = np.random.default_rng(seed)
        picked = [
            rng.permutation(np.flatnonzero(self.pool.y == label))[:size]
            for label in range(self.num_classes)
        ]
        index = np.sort(np.concatenate(picked))
        return self.pool.take(index)
