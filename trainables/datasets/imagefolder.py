"""`imagefolder:<path>`: torchvision's ImageFolder layout, one subfolder per class.

Images of any size and mode, read as a viewer shows them (images.as_viewed: EXIF
orientation, 16-bit and float scaled to 8 bits, transparency over white). `train/` with
`val/` and/or `test/` subfolders are used as given (a missing one is carved out of
`train/`); else the folder is one pool, split here. Every file is read when the target
loads, so a bad one stops the study before any trial, and resized there by PIL to the
input size (images of many sizes need one shape); PIL's result is 8-bit, so the target is
kept as uint8 and normalised inside the trial.

Subfolders that are not classes are skipped and said so in one line of the study's
output: hidden ones (`.git`), and ones that hold files but no image (`notes/`). An empty
subfolder is an error: a class whose images are missing. Every error is one line, file
and folder names shown escaped (base.shown) whatever they hold.

The loaded target is named after the folder (`imagefolder:<folder name>`,
registry.public_name): its path is read here and shown in error lines, never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from trainables.datasets.base import DataError, Preprocessing, Split, TargetData, cut_middle, shown
from trainables.datasets.images import Encoding, as_viewed, resize_and_crop
from trainables.datasets.registry import PATH_ARGUMENT, Request, register
from trainables.datasets.splits import assemble, carve, check_held_out, split_pool

# torchvision's ImageFolder extensions; other files in a class folder are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
PARTS = ("train", "val", "test")


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS and not _hidden(p)
    )


def _holds_files(folder: Path) -> bool:
    """Whether a folder holds a file (a hidden one, like .DS_Store, aside)."""
    return any(p.is_file() and not _hidden(p) for p in folder.rglob("*"))


def report_skipped(folder: Path, skipped: list[str], log: Callable[[str], None]) -> None:
    """One line naming the subfolders of `folder` that were skipped and why."""
    if skipped:
        what = "1 folder" if len(skipped) == 1 else f"{len(skipped)} folders"
        log(f"imagefolder: skipped {what} of {shown(folder)}: {', '.join(skipped)}")


def _subfolders(folder: Path) -> list[Path]:
    """The subfolders of `folder`, sorted, or DataError naming a folder that cannot be listed."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir())
    except OSError as error:  # permissions, or a folder that went away
        where = shown(error.filename or folder)
        raise DataError(f"imagefolder: cannot list {where}: {error.strerror or error}") from None


def _classes(folder: Path, log: Callable[[str], None]) -> dict[Path, list[Path]]:
    """Each class folder's image files; the subfolders that are not classes told (`log`)."""
    found, skipped = {}, []
    for sub in _subfolders(folder):
        if _hidden(sub):
            skipped.append(f"{shown(sub.name)} (hidden)")
            continue
        images = _image_files(sub)
        if images or not _holds_files(sub):  # an empty one: a class with no images
            found[sub] = images
        else:
            skipped.append(f"{shown(sub.name)} (no images)")
    report_skipped(folder, skipped, log)
    return found


def scan_imagefolder(
    folder: Path, log: Callable[[str], None] = print
) -> tuple[list[str], list[Path], np.ndarray]:
    """(classes, files, labels) of one ImageFolder-layout folder; empty classes are errors."""
    found = _classes(folder, log)
    classes = list(found)
    if not classes:
        raise DataError(
            f"imagefolder: {shown(folder)} has no class subfolders "
            f"(expected {shown(folder)}/<class>/<image>)"
        )
    if len(classes) < 2:  # one class: every prediction right, a study with no answer
        raise DataError(
            f"imagefolder: {shown(folder)} has {len(classes)} class subfolder "
            f"({classes[0].name!r}); a study needs at least 2 classes"
        )
    files, labels = [], []
    for label, class_dir in enumerate(classes):
        if not found[class_dir]:
            raise DataError(
                f"imagefolder: class {class_dir.name!r} in {shown(folder)} has no images "
                f"({', '.join(IMAGE_EXTENSIONS)})"
            )
        files += found[class_dir]
        labels += [label] * len(found[class_dir])
    return [c.name for c in classes], files, np.asarray(labels, dtype=np.int64)


def _reason(error: Exception) -> str:
    """Why PIL could not read a file, without the file's name (the line has it already)."""
    from PIL import UnidentifiedImageError

    if isinstance(error, UnidentifiedImageError):
        return "cannot identify image file"
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return error.strerror  # "[Errno 13] Permission denied: '<the path again>'"
    text = str(error).strip()
    return cut_middle(text.splitlines()[0]) if text else type(error).__name__


def read_image(path: Path, prep: Preprocessing) -> np.ndarray:
    """One image file -> (channels, size, size) uint8, or DataError naming it."""
    from PIL import Image, UnidentifiedImageError
    from PIL.Image import DecompressionBombError  # an Exception, not an OSError

    try:
        with Image.open(path) as image:
            image.load()  # decodes everything: a truncated file fails here, not later
            image = as_viewed(image, prep.channels)
    except (
        OSError,
        UnidentifiedImageError,
        DecompressionBombError,
        ValueError,
        SyntaxError,
    ) as error:
        raise DataError(f"imagefolder: cannot read image {shown(path)}: {_reason(error)}") from None
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


def _class_list(classes: list[str], most: int = 10) -> str:
    names = ", ".join(shown(name) for name in classes[:most])
    return names + (f", ... ({len(classes)} in all)" if len(classes) > most else "")


def _read_split(request: Request, folder: Path, classes: list[str]) -> Split:
    """A given `val/` or `test/` folder, whose classes must be train/'s."""
    found, files, labels = scan_imagefolder(folder, request.log)
    missing = sorted(set(classes) - set(found))
    extra = sorted(set(found) - set(classes))
    if missing or extra:
        what = f"lacks class {missing[0]!r}" if missing else f"has class {extra[0]!r}"
        raise DataError(
            f"imagefolder: {shown(folder)} {what}, which train/ does not match "
            f"(classes: {_class_list(classes)})"
        )
    index = {name: i for i, name in enumerate(classes)}
    labels = np.asarray([index[found[label]] for label in labels], dtype=np.int64)
    return Split(read_images(files, request.prep), labels, encoding(request.prep))


def _given_splits(request: Request, given: dict[str, Path]) -> TargetData:
    """`train/` plus the held-out folders there are; a missing one is carved from train/."""
    prep = request.prep
    classes, files, labels = scan_imagefolder(given["train"], request.log)
    parts = {"val": request.val_per_class, "test": request.test_per_class}
    parts = {part: n for part, n in parts.items() if part not in given}
    check_held_out(
        f"{shown(request.name)} (train/)",
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
            held[part] = _read_split(request, given[part], classes)
    return TargetData(request.name, tuple(classes), whole.take(rest), held["val"], held["test"])


def _report_beside_splits(folder: Path, log: Callable[[str], None]) -> None:
    """The folders beside train/, val/ and test/, which a split layout does not read."""
    others = [p for p in _subfolders(folder) if p.name not in PARTS]
    why = {True: "hidden", False: "not train/, val/ or test/"}
    report_skipped(folder, [f"{shown(p.name)} ({why[_hidden(p)]})" for p in others], log)


@register("imagefolder", argument=PATH_ARGUMENT)
def load(request: Request) -> TargetData:
    folder = Path(request.arg).expanduser()
    if not folder.exists():
        raise DataError(f"imagefolder: {shown(folder)} does not exist")
    if not folder.is_dir():
        raise DataError(f"imagefolder: {shown(folder)} is not a folder")
    given = {part: folder / part for part in PARTS if (folder / part).is_dir()}
    if "train" in given:
        _report_beside_splits(folder, request.log)
        return _given_splits(request, given)
    classes, files, labels = scan_imagefolder(folder, request.log)
    held, pool = split_pool(
        request.name, classes, labels, request.val_per_class, request.test_per_class
    )
    images = read_images(files, request.prep)
    return assemble(request.name, classes, images, labels, held, pool, encoding(request.prep))
