"""Target datasets and the fixed splits every trial of a study shares.

Targets (`target.dataset` of a study), one module each, found by the registry:
- `digits` (digits.py): scikit-learn's bundled 8x8 handwritten digits;
- `glyphs` (glyphs.py): the rendered letters of the source task, as a target (other renders);
- `imagefolder:<path>` (imagefolder.py): torchvision's ImageFolder layout, one subfolder per
  class, images of any size and mode read as a viewer shows them; `train/` with `val/`
  and/or `test/` subfolders are used as given (a missing one is carved out of `train/`),
  else a fixed stratified split is made; subfolders that are not classes (hidden, or
  without images) are skipped and named in one line of the study's output;
- `torchvision:<name>` (torchvision.py): CIFAR10, CIFAR100, MNIST or FashionMNIST under a
  local root (downloaded only when asked); the official test split gives the test set.

Adding a dataset is one new module here whose loader is decorated with `@register(kind)`.
The shared core: base.py (Preprocessing, Split, TargetData, DataError, normalise),
splits.py (the one fixed, stratified split), images.py (the one resize-and-crop and
conversion to model inputs),
registry.py (register, parse_dataset, load_target); the source task is source.py and
training-batch augmentation augment.py.

Every image is converted the same way (`Preprocessing`): to the channels the weights
expect (grey or RGB), resized (shorter side) and centre-cropped to the study's input size,
and normalised with the weights' own statistics: the rendered source's grey level for
study-pretrained and scratch models, the torchvision weights' mean and std for those.
The conversion happens inside the trial (`images.Encoding`): a target is kept as stored
(uint8 at its own resolution, `images.store`), which is what Ray's object store carries.
"""

from __future__ import annotations

from trainables.datasets.base import (
    GREY_MEAN,
    GREY_STD,
    IMAGE_SIZE,
    DataError,
    Preprocessing,
    Split,
    TargetData,
    normalise,
    preprocessing_for,
)
from trainables.datasets.registry import dataset_names, load_target, parse_dataset, register

__all__ = [
    "GREY_MEAN",
    "GREY_STD",
    "IMAGE_SIZE",
    "DataError",
    "Preprocessing",
    "Split",
    "TargetData",
    "dataset_names",
    "load_target",
    "normalise",
    "parse_dataset",
    "preprocessing_for",
    "register",
]
