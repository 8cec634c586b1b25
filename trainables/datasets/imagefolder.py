"""`imagefolder:<path>`: torchvision's ImageFolder layout, one subfolder per class.

Images of any size and mode. `train/` with `val/` and/or `test/` subfolders are used as
given (a missing one is carved out of `train/`); else the folder is one pool, split here.
Every file is read when the target loads, so a bad one stops the study before any trial,
and resized there by PIL to the input size (images of many sizes need one shape); PIL's
result is 8-bit, so the target is kept as uint8 and normalised inside the trial.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainables.datasets.base import DataError, Preprocessing, Split, TargetData
from trainables.datasets.images import Encoding, resize_and_crop
from trainables.datasets.registry import Request, register
from trainables.datasets.splits import assemble, carve, check_held_out, split_pool

# torchvision's ImageFolder extensions; other files in a class folder are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")


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
    if len(classes) < 2:  # one class: every prediction right, a study with no answer
        raise DataError(
            f"imagefolder: {folder} has {len(classes)} class subfolder "
            f"({classes[0].name!r}); a study needs at least 2 classes"
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
    """One image file -> (channels, size, size) uint8, or DataError naming it."""
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError  # an Exception, not an OSError

    try:
        with Image.open(path) as image:
            image.load()  # decodes everything: a truncated file fails here, not later
            image = image.convert("L" if prep.channels == 1 else "RGB")
    except (
        OSError,
        UnidentifiedImageError,
        DecompressionBombError,
        ValueError,
        SyntaxError,
    ) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DataError(f"imagefolder: cannot read image {path}: {reason}") from None
    image = resize_and_crop(image, prep.size, prep.resize)
    array = np.asarray(image, dtype=np.uint8)
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def read_images(files: list[Path], prep: Preprocessing) -> np.ndarray:
    """The images (N, C, size, size) uint8, channels, resize and crop done."""
    images = np.empty((len(files), prep.channels, prep.size, prep.size), np.uint8)
    for i, path in enumerate(files):
        images[i] = read_image(path, prep)
    return images


def encoding(prep: Preprocessing) -> Encoding:
    """What is left for the trial: / 255, then normalisation."""
    return Encoding(prep, 255.0, resized=True)


def _read_split(folder: Path, classes: list[str], prep: Preprocessing) -> Split:
    """A given `val/` or `test/` folder, whose classes must be train/'s."""
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
    return Split(read_images(files, prep), labels, encoding(prep))


def _given_splits(request: Request, given: dict[str, Path]) -> TargetData:
    """`train/` plus the held-out folders there are; a missing one is carved from train/."""
    prep = request.prep
    classes, files, labels = scan_imagefolder(given["train"])
    parts = {"val": request.val_per_class, "test": request.test_per_class}
    parts = {part: n for part, n in parts.items() if part not in given}
    check_held_out(
        f"{request.name} (train/)",
        classes,
        labels,
        sum(parts.values()),
        " + ".join(parts) or "nothing",
    )
    whole = Split(read_images(files, prep), labels, encoding(prep))
    carved, rest = carve(labels, parts)
    held = {part: whole.take(index) for part, index in carved.items()}
    for part in ("val", "test"):
        if part in given:
            held[part] = _read_split(given[part], classes, prep)
    return TargetData(request.name, tuple(classes), whole.take(rest), held["val"], held["test"])


@register("imagefolder", argument="<path>")
def load(request: Request) -> TargetData:
    folder = Path(request.arg).expanduser()
    if not folder.exists():
        raise DataError(f"imagefolder: {folder} does not exist")
    if not folder.is_dir():
        raise DataError(f"imagefolder: {folder} is not a folder")
    given = {part: folder / part for part in ("train", "val", "test") if (folder / part).is_dir()}
    if "train" in given:
        return _given_splits(request, given)
    classes, files, labels = scan_imagefolder(folder)
    held, pool = split_pool(
        request.name, classes, labels, request.val_per_class, request.test_per_class
    )
    images = read_images(files, request.prep)
    return assemble(request.name, classes, images, labels, held, pool, encoding(request.prep))
