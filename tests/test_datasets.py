"""Target datasets: ImageFolder layouts, torchvision datasets from a local root, the glyphs
target, preprocessing that follows the weights, augmentation, and bad data named clearly."""

from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import trainables.datasets as datasets_package
from trainables.datasets import (
    GREY_MEAN,
    DataError,
    Preprocessing,
    dataset_names,
    load_target,
    parse_dataset,
    preprocessing_for,
    register,
)
from trainables.datasets import registry as dataset_registry
from trainables.datasets.augment import augment

MODES = ("L", "RGB", "RGBA", "P")


def make_image(path: Path, label: int, index: int) -> None:
    """A class-dependent pattern in varying sizes and modes, as PNG or JPEG."""
    rng = np.random.default_rng(label * 100 + index)
    width, height = 20 + 7 * (index % 4), 24 + 5 * (index % 3)
    array = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
    array[:, : width // (label + 2)] += 150  # a bright band whose width depends on the class
    image = Image.fromarray(array, "RGB").convert(MODES[index % len(MODES)])
    if path.suffix == ".jpg":
        image = image.convert("RGB" if image.mode in ("RGBA", "P") else image.mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def make_folder(root: Path, classes=("cat", "dog", "owl"), per_class=8) -> Path:
    for label, name in enumerate(classes):
        for i in range(per_class):
            make_image(root / name / f"{i:03d}.{'jpg' if i % 2 else 'png'}", label, i)
    return root


def test_imagefolder_any_size_and_mode_becomes_model_input(tmp_path):
    folder = make_folder(tmp_path / "pets")
    (tmp_path / "pets" / "cat" / "notes.txt").write_text("not an image: ignored")
    grey = load_target(f"imagefolder:{folder}", 2, 2, prep=Preprocessing(size=32, channels=1))
    assert grey.classes == ("cat", "dog", "owl")
    assert grey.pool.x.shape == (12, 1, 32, 32) and grey.pool.x.dtype == np.float32
    assert np.all(np.bincount(grey.val.y) == 2) and np.all(np.bincount(grey.test.y) == 2)
    assert grey.max_size() == 4
    rgb = load_target(f"imagefolder:{folder}", 2, 2, prep=Preprocessing(size=40, channels=3))
    assert rgb.val.x.shape == (6, 3, 40, 40)
    again = load_target(f"imagefolder:{folder}", 2, 2, prep=Preprocessing(size=32, channels=1))
    assert np.array_equal(again.test.x, grey.test.x)  # a fixed split


def test_imagefolder_train_val_test_folders_are_used_as_given(tmp_path):
    root = tmp_path / "given"
    make_folder(root / "train", per_class=6)
    make_folder(root / "val", per_class=3)
    make_folder(root / "test", per_class=2)
    data = load_target(f"imagefolder:{root}", 1, 1)
    assert (len(data.pool), len(data.val), len(data.test)) == (18, 9, 6)
    only_val = tmp_path / "only-val"
    make_folder(only_val / "train", per_class=6)
    make_folder(only_val / "val", per_class=3)
    data = load_target(f"imagefolder:{only_val}", 1, 2)  # test carved out of train/
    assert (len(data.pool), len(data.val), len(data.test)) == (12, 9, 6)


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage,expected",
    [
        ("missing", "does not exist"),
        ("empty class", "class 'dog' in"),
        ("truncated png", "cannot read image"),
        ("garbage jpg", "cannot read image"),
        ("no classes", "has no class subfolders"),
        ("val class mismatch", "lacks class 'owl'"),
        ("too few", "class 'owl' has 3 images, too few"),
    ],
)
def test_bad_imagefolder_names_the_file_or_class(tmp_path, damage, expected):
    root = make_folder(tmp_path / "data")
    if damage == "missing":
        root = tmp_path / "absent"
    elif damage == "empty class":
        for file in (root / "dog").iterdir():
            file.unlink()
    elif damage == "truncated png":
        truncate(root / "owl" / "002.png")
        expected = f"{root / 'owl' / '002.png'}"
    elif damage == "garbage jpg":
        (root / "cat" / "999.jpg").write_bytes(b"definitely not a jpeg")
    elif damage == "no classes":
        root = tmp_path / "flat"
        root.mkdir()
        make_image(root / "a.png", 0, 0)
    elif damage == "val class mismatch":
        make_folder(root / "train", classes=("cat", "dog", "owl"))
        make_folder(root / "val", classes=("cat", "dog"))
    elif damage == "too few":
        for file in sorted((root / "owl").iterdir())[3:]:
            file.unlink()
    with pytest.raises(DataError) as error:
        load_target(f"imagefolder:{root}", 2, 2)
    message = str(error.value)
    assert expected in message and "\n" not in message, message


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's idx format: magic (0, 0, type 0x08 = ubyte, ndim), the sizes, the bytes."""
    header = struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def fake_mnist(root: Path, per_class: int = 6) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", per_class), ("t10k", 3)):
        labels = np.repeat(np.arange(10), n)
        images = rng.integers(0, 255, (len(labels), 28, 28))
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
    assert not list(raw.glob("*.gz")) and gzip  # torchvision reads the unpacked files


def test_torchvision_dataset_from_a_local_root_without_downloading(tmp_path):
    fake_mnist(tmp_path)
    data = load_target("torchvision:MNIST", 2, 2, root=tmp_path)
    assert data.num_classes == 10 and data.classes[0].startswith("0")
    assert data.pool.x.shape == (40, 1, 32, 32)  # 28x28 resized to the input size
    assert len(data.val) == 20 and len(data.test) == 20  # test from the official test split
    with pytest.raises(DataError, match=r"torchvision:CIFAR10: not found under .*download: true"):
        load_target("torchvision:CIFAR10", 2, 2, root=tmp_path / "nothing")


def test_dataset_names_are_checked():
    assert parse_dataset("imagefolder:/some/where") == ("imagefolder", "/some/where")
    with pytest.raises(ValueError, match="allowed: CIFAR10, CIFAR100, MNIST, FashionMNIST"):
        parse_dataset("torchvision:ImageNet")
    with pytest.raises(ValueError, match="allowed: digits, glyphs, imagefolder:<path>"):
        parse_dataset("mnist")


def test_a_folder_is_shown_by_its_name_never_its_path(tmp_path, monkeypatch):
    """A loaded image folder is `imagefolder:<folder name>` (its tags, dataset inputs and
    answer follow TargetData.name); what is cached is keyed by the data, so two folders of
    one name never share features (trainables.features keys on the inputs' fingerprint)."""
    from trainables.feature_store import fingerprint

    public = dataset_registry.public_name
    assert public("imagefolder:/data/x/hymenoptera_data") == "imagefolder:hymenoptera_data"
    assert public("imagefolder:~/photos/my pets/") == "imagefolder:my pets"
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    assert public("imagefolder:.") == "imagefolder:here"
    assert public("digits") == "digits" and public("torchvision:CIFAR10") == "torchvision:CIFAR10"
    one = load_target(f"imagefolder:{make_folder(tmp_path / 'a' / 'pets')}", 2, 2)
    make_folder(tmp_path / "b" / "pets")
    make_image(tmp_path / "b" / "pets" / "owl" / "003.jpg", 2, 50)  # one image differs
    other = load_target(f"imagefolder:{tmp_path / 'b' / 'pets'}", 2, 2)
    assert one.name == other.name == "imagefolder:pets"

    def inputs_key(data) -> str:  # what the feature cache's keys hash (PrefixCache.key)
        return fingerprint(*(part.tensors()[0] for part in (data.pool, data.val, data.test)))

    assert inputs_key(one) != inputs_key(other)


def test_glyphs_as_a_target():
    data = load_target("glyphs", 10, 20)
    assert data.num_classes == 52 and data.pool.x.shape[1:] == (1, 32, 32)
    assert np.all(np.bincount(data.test.y) == 20) and data.max_size() == 70


def test_preprocessing_follows_torchvision_weights():
    prep = preprocessing_for("torchvision:ResNet18_Weights.IMAGENET1K_V1", size=64)
    assert prep.channels == 3 and prep.mean == pytest.approx((0.485, 0.456, 0.406))
    assert prep.std == pytest.approx((0.229, 0.224, 0.225)) and prep.resize == 73  # 256/224
    study = preprocessing_for("study:glyphs")
    assert study.channels == 1 and study.mean == (GREY_MEAN,)
    grey = Preprocessing(channels=1, mean=prep.mean, std=prep.std)
    mean, _ = grey.stats()
    assert mean.shape == (1, 1, 1, 1) and mean.item() == pytest.approx(0.449, abs=1e-3)


def test_digits_as_rgb_at_another_size_keeps_the_split():
    grey = load_target("digits", 10, 20)
    rgb = load_target("digits", 10, 20, prep=Preprocessing(size=48, channels=3))
    assert rgb.pool.x.shape[1:] == (3, 48, 48) and np.array_equal(rgb.test.y, grey.test.y)


def test_augmentation_is_seeded_and_keeps_shapes():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).view(2, 1, 8, 8)
    a = augment(x, ("crop", "flip"), torch.Generator().manual_seed(0))
    b = augment(x, ("crop", "flip"), torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, x)
    flipped = augment(x, ("flip",), torch.Generator().manual_seed(1))
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))
    assert torch.equal(augment(x, (), torch.Generator()), x)


def test_shift_moves_a_stroke_a_little_and_keeps_the_background():
    # One bright pixel on an even background: each shifted copy still has only the
    # background around it (edges continued, no padding frame), moved by at most 1/16 of
    # the side, by different offsets across the batch.
    x = torch.full((64, 1, 32, 32), -0.5)
    x[:, 0, 16, 16] = 3.0
    shifted = augment(x, ("shift",), torch.Generator().manual_seed(0))
    assert set(shifted.unique().tolist()) == {-0.5, 3.0}
    where = (shifted[:, 0] == 3.0).nonzero()
    assert torch.equal(where[:, 0], torch.arange(64))  # the stroke stays in every image
    offsets = where[:, 1:] - 16
    assert offsets.abs().max() == 2 and len(offsets.unique(dim=0)) > 10
    with pytest.raises(ValueError, match="allowed: crop, flip, shift"):
        augment(x, ("rotate",), torch.Generator())


TINY_MODULE = '''"""`tiny:<n>`: n classes of four 3x5 grey ramps each (a dataset in one file)."""

from __future__ import annotations

import numpy as np

from trainables.datasets.images import convert_array
from trainables.datasets.registry import register
from trainables.datasets.splits import assemble, split_pool


@register("tiny", argument="<n>")
def load(request):
    n = int(request.arg)
    labels = np.repeat(np.arange(n), 4)
    images = np.linspace(0, 1, len(labels) * 15, dtype=np.float32).reshape(-1, 3, 5)
    classes = [f"c{i}" for i in range(n)]
    held, pool = split_pool(
        request.name, classes, labels, request.val_per_class, request.test_per_class
    )
    return assemble(request.name, classes, convert_array(images, request.prep), labels, held, pool)
'''


def test_adding_a_dataset_is_one_module(tmp_path, monkeypatch):
    """A module dropped on the package's path is found by the registry: nothing else is edited."""
    assert dataset_names() == [
        "digits",
        "glyphs",
        "imagefolder:<path>",
        "textures",
        "torchvision:<name>",
    ]
    with pytest.raises(ValueError, match="unknown target dataset 'tiny:3'"):
        parse_dataset("tiny:3")
    (tmp_path / "tiny_target.py").write_text(TINY_MODULE)
    module = f"{datasets_package.__name__}.tiny_target"
    monkeypatch.setattr(dataset_registry, "_REGISTRY", dict(dataset_registry._REGISTRY))
    monkeypatch.setattr(datasets_package, "__path__", [*datasets_package.__path__, str(tmp_path)])
    try:
        assert "tiny:<n>" in dataset_names()
        assert parse_dataset("tiny:3") == ("tiny", "3")
        with pytest.raises(
            ValueError, match="allowed: digits, glyphs, imagefolder:<path>, textures, tiny:<n>"
        ):
            parse_dataset("tiny")  # it takes an argument
        data = load_target("tiny:3", 1, 1, prep=Preprocessing(size=4, channels=3))
        assert data.name == "tiny:3" and data.classes == ("c0", "c1", "c2")
        assert data.pool.x.shape == (6, 3, 4, 4) and len(data.val) == len(data.test) == 3
        with pytest.raises(ValueError, match="target dataset 'tiny' is already registered"):
            register("tiny")(lambda request: None)
    finally:
        sys.modules.pop(module, None)
        vars(datasets_package).pop("tiny_target", None)


def test_the_target_is_kept_as_stored_at_least_4x_smaller_than_float32_inputs(tmp_path):
    """The object store carries uint8 at the stored resolution; the trial's inputs are the
    gpu-cluster preset's (RGB, ImageNet statistics, 96 px)."""
    from trainables.datasets.registry import Request
    from trainables.datasets.torchvision import from_arrays

    prep = preprocessing_for("torchvision:ResNet18_Weights.IMAGENET1K_V1", size=96)
    fake_mnist(tmp_path)
    mnist = load_target("torchvision:MNIST", 2, 2, prep=prep, root=tmp_path)
    rng = np.random.default_rng(0)
    cifar_shaped = from_arrays(  # CIFAR-10's images: 32x32 RGB
        Request("torchvision", "CIFAR10", 2, 3, prep, tmp_path, False),
        (rng.integers(0, 256, (100, 3, 32, 32), dtype=np.uint8), np.arange(100) % 10),
        (rng.integers(0, 256, (40, 3, 32, 32), dtype=np.uint8), np.arange(40) % 10),
        [str(i) for i in range(10)],
    )
    digits = load_target("digits", 10, 20)
    for data, stored in ((mnist, (1, 28, 28)), (cifar_shaped, (3, 32, 32)), (digits, (1, 8, 8))):
        splits = (data.pool, data.val, data.test)
        assert all(s.data.dtype == np.uint8 and s.data.shape[1:] == stored for s in splits)
        inputs = data.pool.x
        assert (
            inputs.dtype == np.float32
            and inputs.shape[1:] == (data.in_channels,) + (data.image_size,) * 2
        )
        images = sum(len(s) for s in splits)
        float32_at_input_size = images * data.in_channels * data.image_size**2 * 4
        payload = sum(s.data.nbytes for s in splits)
        assert float32_at_input_size >= 4 * payload
        assert data.nbytes == payload + sum(s.y.nbytes for s in splits)
