"""Datasets and the fixed splits every trial of a study shares.

A target is split once, by a fixed seed, into a stratified test set, a stratified
validation set and a training pool. A training subset for (size, seed) takes `size`
examples of every class from the pool, so validation and test are disjoint from every
subset, and for one seed a smaller subset is contained in a larger one.

Targets (`target.dataset` of a study):
- `digits`: scikit-learn's bundled 8x8 handwritten digits;
- `glyphs`: the rendered letters of the source task, as a target (other renders);
- `imagefolder:<path>`: torchvision's ImageFolder layout, one subfolder per class, images
  of any size and mode; `train/` with `val/` and/or `test/` subfolders are used as given
  (a missing one is carved out of `train/`), else a fixed stratified split is made;
- `torchvision:<name>`: CIFAR10, CIFAR100, MNIST or FashionMNIST under a local root
  (downloaded only when asked); the official test split gives the test set.

Every image is converted the same way (`Preprocessing`): to the channels the weights
expect (grey or RGB), resized (shorter side) and centre-cropped to the study's input size,
and normalised with the weights' own statistics: the rendered source's grey level for
study-pretrained and scratch models, the torchvision weights' mean and std for those.
Bad data raises `DataError`, one line naming the file or class and the problem; the driver
loads the target before any trial starts, so it ends the study with exit code 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from trainables.glyphs import LETTERS, render_glyphs

TARGETS = ("digits", "glyphs", "imagefolder:<path>", "torchvision:<name>")
TORCHVISION_DATASETS = ("CIFAR10", "CIFAR100", "MNIST", "FashionMNIST")
SOURCES = ("glyphs",)
IMAGE_SIZE = 32
# Grey-level statistics of the rendered source task, applied to source and target alike
# (the target is fed the way the pretrained network was trained).
GREY_MEAN = 0.15
GREY_STD = 0.29
SPLIT_SEED = 20240601  # fixed: every study sees the same val/test split of a target
GLYPH_TARGET_PER_CLASS = 100
# torchvision's ImageFolder extensions; other files in a class folder are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
AUGMENTATIONS = ("crop", "flip")


class DataError(ValueError):
    """Bad target data: the message is one line naming the file or class and the problem."""


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


@dataclass(frozen=True)
class Split:
    """Normalised images (N, C, H, W) float32 and labels (N,) int64, as numpy arrays."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.x), torch.from_numpy(self.y)


@dataclass(frozen=True)
class TargetData:
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
        return self.pool.x.shape[1]

    @property
    def image_size(self) -> int:
        return self.pool.x.shape[-1]

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
                f"(or 'all'), got {size}"
            )
        rng = np.random.default_rng(seed)
        picked = [
            rng.permutation(np.flatnonzero(self.pool.y == label))[:size]
            for label in range(self.num_classes)
        ]
        index = np.sort(np.concatenate(picked))
        return Split(self.pool.x[index], self.pool.y[index])


# --- turning raw images into model inputs ---------------------------------------------------


def normalise(images: np.ndarray, prep: Preprocessing | None = None) -> np.ndarray:
    """Images in [0, 1], (N, H, W) grey or (N, C, H, W) -> standardised float32 (N, C, H, W)."""
    prep = prep or Preprocessing(size=images.shape[-1])
    if images.ndim == 3:
        images = images[:, None]
    mean, std = prep.stats()
    return ((images - mean) / std).astype(np.float32)


def _luma(rgb: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma, as PIL's convert('L')."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=rgb.dtype).view(1, 3, 1, 1)
    return (rgb * weights).sum(1, keepdim=True)


def convert_array(images: np.ndarray, prep: Preprocessing, chunk: int = 2048) -> np.ndarray:
    """Images in [0, 1] as (N, C, H, W) (C 1 or 3) -> model inputs (N, prep.channels, size, size)."""
    out = np.empty((len(images), prep.channels, prep.size, prep.size), np.float32)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk], np.float32))
        if x.shape[1] == 3 and prep.channels == 1:
            x = _luma(x)
        elif x.shape[1] == 1 and prep.channels == 3:
            x = x.expand(-1, 3, -1, -1)
        height, width = x.shape[-2:]
        short = prep.resize or prep.size
        if (height, width) != (short, short) or short != prep.size:
            scale = short / min(height, width)
            size = (max(short, round(height * scale)), max(short, round(width * scale)))
            if size != (height, width):
                x = F.interpolate(
                    x, size=size, mode="bilinear", align_corners=False, antialias=scale < 1
                )
            top = (x.shape[-2] - prep.size) // 2
            left = (x.shape[-1] - prep.size) // 2
            x = x[..., top : top + prep.size, left : left + prep.size]
        out[start : start + chunk] = x.clamp(0, 1).numpy()
    return normalise(out, prep)


def _stratified_split(y: np.ndarray, per_class: int, rng: np.random.Generator):
    taken = np.concatenate(
        [rng.permutation(np.flatnonzero(y == label))[:per_class] for label in np.unique(y)]
    )
    rest = np.setdiff1d(np.arange(len(y)), taken)
    return np.sort(taken), rest


def _check_held_out(name, classes, labels, held_out: int, what: str) -> None:
    counts = np.bincount(labels, minlength=len(classes))
    for label, count in enumerate(counts):
        if count <= held_out:
            raise DataError(
                f"{name}: class {classes[label]!r} has {count} images, too few for {what} "
                f"({held_out}) plus at least 1 training example"
            )


def split_target(
    name, classes, images, labels, val_per_class, test_per_class, prep=None
) -> TargetData:
    """One pool of (raw images in [0, 1], labels) split into pool, validation and test."""
    _check_held_out(
        name, classes, labels, val_per_class + test_per_class, "val_per_class + test_per_class"
    )
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx, rest = _stratified_split(labels, test_per_class, rng)
    val_local, pool_local = _stratified_split(labels[rest], val_per_class, rng)
    val_idx, pool_idx = rest[val_local], rest[pool_local]
    x = convert_array(_nchw(images), prep or Preprocessing(size=images.shape[-1]))
    return TargetData(
        name=name,
        classes=tuple(classes),
        pool=Split(x[pool_idx], labels[pool_idx]),
        val=Split(x[val_idx], labels[val_idx]),
        test=Split(x[test_idx], labels[test_idx]),
    )


def _nchw(images: np.ndarray) -> np.ndarray:
    return images[:, None] if images.ndim == 3 else images


# --- the bundled and rendered targets ---------------------------------------------------------


def _digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (0..16), upsampled to 32x32 in [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    big = F.interpolate(small, size=(IMAGE_SIZE, IMAGE_SIZE), mode="bilinear", align_corners=False)
    return big[:, 0].clamp(0, 1).numpy(), digits.target.astype(np.int64)


def _digits(val_per_class, test_per_class, prep) -> TargetData:
    images, labels = _digits_images()
    classes = [str(d) for d in range(10)]
    return split_target("digits", classes, images, labels, val_per_class, test_per_class, prep)


def _glyphs(val_per_class, test_per_class, prep) -> TargetData:
    # Other renders than the source task's (another seed), same 52 letters.
    images, labels = render_glyphs(GLYPH_TARGET_PER_CLASS * len(LETTERS), SPLIT_SEED, IMAGE_SIZE)
    return split_target("glyphs", LETTERS, images, labels, val_per_class, test_per_class, prep)


# --- torchvision datasets from a local root --------------------------------------------------


def _torchvision(name, root, download, val_per_class, test_per_class, prep) -> TargetData:
    from torchvision import datasets

    if name not in TORCHVISION_DATASETS:
        raise DataError(
            f"unknown torchvision dataset {name!r}; allowed: {', '.join(TORCHVISION_DATASETS)}"
        )
    splits = []
    for train in (True, False):
        try:
            data = getattr(datasets, name)(root=root, train=train, download=download)
        except RuntimeError as error:
            hint = "" if download else " (set target.download: true to download it)"
            raise DataError(
                f"torchvision:{name}: not found under {Path(root).resolve()}: "
                f"{str(error).splitlines()[0]}{hint}"
            ) from None
        images = np.asarray(data.data)
        images = images.transpose(0, 3, 1, 2) if images.ndim == 4 else images[:, None]
        splits.append((images, np.asarray(data.targets, dtype=np.int64), list(data.classes)))
    (train_x, train_y, classes), (test_x, test_y, _) = splits
    label = f"torchvision:{name}"
    _check_held_out(label, classes, train_y, val_per_class, "val_per_class")
    rng = np.random.default_rng(SPLIT_SEED)
    test_idx, _ = _stratified_split(test_y, test_per_class, rng)
    val_idx, pool_idx = _stratified_split(train_y, val_per_class, rng)

    def convert(images, index):
        return convert_array(images[index].astype(np.float32) / 255.0, prep)

    return TargetData(
        name=label,
        classes=tuple(classes),
        pool=Split(convert(train_x, pool_idx), train_y[pool_idx]),
        val=Split(convert(train_x, val_idx), train_y[val_idx]),
        test=Split(convert(test_x, test_idx), test_y[test_idx]),
    )


# --- ImageFolder ----------------------------------------------------------------------------


def _class_folders(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".")
    )


def scan_imagefolder(folder: Path) -> tuple[list[str], list[Path], np.ndarray]:
    """(classes, files, labels) of one ImageFolder-layout folder; empty classes are errors."""
    classes = _class_folders(folder)
    if not classes:
        raise DataError(
            f"imagefolder: {folder} has no class subfolders (expected {folder}/<class>/<image>)"
        )
    files, labels = [], []
    for label, class_dir in enumerate(classes):
        found = _image_files(class_dir)
        if not found:
            raise DataError(
                f"imagefolder: class {class_dir.name!r} in {folder} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        files += found
        labels += [label] * len(found)
    return [c.name for c in classes], files, np.asarray(labels, dtype=np.int64)


def read_image(path: Path, prep: Preprocessing) -> np.ndarray:
    """One image file -> (channels, size, size) floats in [0, 1], or DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()  # decodes everything: a truncated file fails here, not later
            image = image.convert("L" if prep.channels == 1 else "RGB")
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"imagefolder: cannot read image {path}: {reason}") from None
    short = prep.resize or prep.size
    width, height = image.size
    scale = short / min(width, height)
    size = (max(short, round(width * scale)), max(short, round(height * scale)))
    if size != (width, height):
        image = image.resize(size, Image.BILINEAR)
    left, top = (size[0] - prep.size) // 2, (size[1] - prep.size) // 2
    image = image.crop((left, top, left + prep.size, top + prep.size))
    array = np.asarray(image, dtype=np.float32) / 255.0
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_images(files: list[Path], prep: Preprocessing) -> np.ndarray:
    """Model inputs (N, C, size, size), normalised."""
    images = np.empty((len(files), prep.channels, prep.size, prep.size), np.float32)
    for i, path in enumerate(files):
        images[i] = read_image(path, prep)
    return normalise(images, prep)


def _read_split(folder: Path, classes: list[str], prep: Preprocessing) -> Split:
    found, files, labels = scan_imagefolder(folder)
    missing = sorted(set(classes) - set(found))
    extra = sorted(set(found) - set(classes))
    if missing or extra:
        what = f"lacks class {missing[0]!r}" if missing else f"has class {extra[0]!r}"
        raise DataError(
            f"imagefolder: {folder} {what}, which train/ does not match "
            f"(classes: {', '.join(classes)})"
        )
    index = {name: i for i, name in enumerate(classes)}
    labels = np.asarray([index[found[label]] for label in labels], dtype=np.int64)
    return Split(read_images(files, prep), labels)


def _imagefolder(spec: str, val_per_class, test_per_class, prep) -> TargetData:
    name = f"imagefolder:{spec}"
    folder = Path(spec).expanduser()
    if not folder.exists():
        raise DataError(f"imagefolder: {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"imagefolder: {folder} is not a folder")
    given = {part: folder / part for part in ("train", "val", "test") if (folder / part).is_dir()}
    if "train" not in given:
        classes, files, labels = scan_imagefolder(folder)
        _check_held_out(
            name, classes, labels, val_per_class + test_per_class, "val_per_class + test_per_class"
        )
        x = read_images(files, prep)
        rng = np.random.default_rng(SPLIT_SEED)
        test_idx, rest = _stratified_split(labels, test_per_class, rng)
        val_local, pool_local = _stratified_split(labels[rest], val_per_class, rng)
        val_idx, pool_idx = rest[val_local], rest[pool_local]
        return TargetData(
            name,
            tuple(classes),
            Split(x[pool_idx], labels[pool_idx]),
            Split(x[val_idx], labels[val_idx]),
            Split(x[test_idx], labels[test_idx]),
        )
    classes, files, labels = scan_imagefolder(given["train"])
    # A held-out folder that is missing is carved out of train/ (stratified, fixed seed).
    carve = {"val": val_per_class, "test": test_per_class}
    carve = {part: n for part, n in carve.items() if part not in given}
    _check_held_out(
        f"{name} (train/)", classes, labels, sum(carve.values()), " + ".join(carve) or "nothing"
    )
    x = read_images(files, prep)
    rng = np.random.default_rng(SPLIT_SEED)
    rest = np.arange(len(labels))
    held: dict[str, Split] = {}
    for part, per_class in carve.items():
        local, kept = _stratified_split(labels[rest], per_class, rng)
        held[part] = Split(x[rest[local]], labels[rest[local]])
        rest = rest[kept]
    for part in ("val", "test"):
        if part in given:
            held[part] = _read_split(given[part], classes, prep)
    return TargetData(name, tuple(classes), Split(x[rest], labels[rest]), held["val"], held["test"])


# --- entry points ------------------------------------------------------------------------------


def parse_dataset(name: str) -> tuple[str, str]:
    """`digits` -> ('digits', ''); `imagefolder:/x` -> ('imagefolder', '/x'); or ValueError."""
    kind, _, arg = name.partition(":")
    if kind in ("digits", "glyphs") and not arg:
        return kind, ""
    if kind in ("imagefolder", "torchvision") and arg:
        if kind == "torchvision" and arg not in TORCHVISION_DATASETS:
            raise ValueError(
                f"unknown torchvision dataset {arg!r}; allowed: {', '.join(TORCHVISION_DATASETS)}"
            )
        return kind, arg
    raise ValueError(f"unknown target dataset {name!r}; allowed: {', '.join(TARGETS)}")


def load_target(
    name: str,
    val_per_class: int,
    test_per_class: int,
    *,
    prep: Preprocessing | None = None,
    root: str | Path = "data",
    download: bool = False,
) -> TargetData:
    kind, arg = parse_dataset(name)
    prep = prep or Preprocessing()
    if kind == "digits":
        return _digits(val_per_class, test_per_class, prep)
    if kind == "glyphs":
        return _glyphs(val_per_class, test_per_class, prep)
    if kind == "imagefolder":
        return _imagefolder(arg, val_per_class, test_per_class, prep)
    return _torchvision(arg, root, download, val_per_class, test_per_class, prep)


@lru_cache(maxsize=2)  # rendering 40k letters takes ~15 s; every architecture reuses them
def load_source(name: str, n_images: int, seed: int) -> tuple[Split, Split, tuple[str, ...]]:
    """The source task as (train, val) splits; val is a held-out 10%."""
    if name != "glyphs":
        raise ValueError(f"unknown source dataset {name!r}; allowed: {', '.join(SOURCES)}")
    images, labels = render_glyphs(n_images, seed, IMAGE_SIZE)
    x = normalise(images)
    n_val = max(len(LETTERS), n_images // 10)
    return Split(x[n_val:], labels[n_val:]), Split(x[:n_val], labels[:n_val]), tuple(LETTERS)


# --- augmentation (training batches only; it turns the feature cache off) ------------------


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
