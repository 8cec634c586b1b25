"""Image folders as users have them: every image read as a viewer shows it (16-bit and
float scaled, EXIF orientation, transparency over white, 1-bit, palette, CMYK), the
subfolders that are not classes named in one line, and every error naming a file one
line whatever the name holds (through the real CLI: `study validate`, exit 2)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from tests.test_datasets import make_folder
from trainables.datasets import DataError, Preprocessing, load_target
from trainables.datasets.imagefolder import read_image
from trainables.datasets.images import resize_and_crop

SIZE = 16  # every built image is SIZE x SIZE unless it says so: read without resampling


def columns(low: float, high: float, dtype) -> np.ndarray:
    """A SIZE x SIZE left-to-right gradient from `low` to `high`."""
    return np.tile(np.linspace(low, high, SIZE), (SIZE, 1)).astype(dtype)


def halves(left, right, mode: str) -> Image.Image:
    """A SIZE x SIZE image of `mode`, its left half `left`, its right half `right`."""
    image = Image.new(mode, (SIZE, SIZE), left)
    image.paste(right, (SIZE // 2, 0, SIZE, SIZE))
    return image


def grey_halves(left: int, right: int) -> np.ndarray:
    return np.asarray(halves(left, right, "L"))


def as_read(path: Path, mode: str) -> np.ndarray:
    """What reading an 8-bit file was before: PIL's convert, then the resize and crop."""
    with Image.open(path) as image:
        return np.asarray(resize_and_crop(image.convert(mode), SIZE))


# Each case writes its image to `path` (suffix given) and returns (expected pixels
# (H, W) grey or (H, W, 3) RGB, how far a pixel may be off: 0 for lossless files).
def sixteen_bit_png(path: Path):
    pixels = columns(0, 65535, np.uint16)
    Image.fromarray(pixels).save(path)  # mode I;16: PIL's convert clipped it at 255
    return np.rint(pixels / 257), 0


def sixteen_bit_tiff_as_rgb(path: Path):
    pixels = columns(0, 65535, np.uint16)
    Image.fromarray(pixels).save(path)
    return np.repeat(np.rint(pixels / 257)[..., None], 3, axis=2), 0


def int32_tiff_of_16_bits(path: Path):
    pixels = columns(0, 65535, np.int32)  # mode I: how PIL opens many 16-bit files
    Image.fromarray(pixels, "I").save(path)
    return np.rint(pixels / 257), 0


def exif_rotated_jpeg(path: Path):
    # Stored 2 x SIZE wide, SIZE high, dark left and bright right; orientation 6 says
    # "turn 90 degrees clockwise to show": shown SIZE wide, 2 x SIZE high, dark on top.
    stored = Image.new("L", (2 * SIZE, SIZE), 0)
    stored.paste(255, (SIZE, 0, 2 * SIZE, SIZE))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, exif=exif.tobytes(), quality=95)
    shown = np.zeros((2 * SIZE, SIZE))
    shown[SIZE:] = 255
    return shown[SIZE // 2 : SIZE // 2 + SIZE], 40  # the centre crop of what is shown


def one_bit_png(path: Path):
    checks = (np.indices((SIZE, SIZE)).sum(0) % 2).astype(bool)
    Image.fromarray(checks).save(path)  # mode 1
    return checks * 255.0, 0


def palette_with_transparency(path: Path):
    image = halves(0, 1, "P")
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)  # 0: black, 1: red
    image.save(path, transparency=0)  # black is transparent: shown as the page, white
    expected = np.zeros((SIZE, SIZE, 3))
    expected[:, : SIZE // 2] = 255
    expected[:, SIZE // 2 :, 0] = 255
    return expected, 0


def grey_with_alpha(path: Path):
    halves((0, 0), (100, 255), "LA").save(path)  # left: transparent black
    return grey_halves(255, 100), 0


def half_transparent_rgba(path: Path):
    Image.new("RGBA", (SIZE, SIZE), (0, 0, 0, 128)).save(path)
    return np.full((SIZE, SIZE, 3), 127.0), 1  # black half over white


def cmyk_tiff(path: Path):
    halves((0, 0, 0, 0), (0, 255, 255, 0), "CMYK").save(path)  # white | red
    expected = np.full((SIZE, SIZE, 3), 255.0)
    expected[:, SIZE // 2 :, 1:] = 0
    return expected, 0


def cmyk_jpeg(path: Path):
    expected, _ = cmyk_tiff(path.with_suffix(".tif"))
    Image.open(path.with_suffix(".tif")).save(path, quality=95)
    return expected, 12


def float_tiff_of_unit_range(path: Path):
    pixels = columns(0, 1, np.float32)
    Image.fromarray(pixels, "F").save(path)  # PIL's convert made it 0s and 1s
    return np.rint(pixels * 255), 0


def float_tiff_of_any_range(path: Path):
    pixels = columns(-1, 3, np.float32)
    Image.fromarray(pixels, "F").save(path)
    return np.rint((pixels + 1) * 255 / 4), 0


def rgb_png_as_before(path: Path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(path)
    return as_read(path, "RGB"), 0


def grey_jpeg_as_before(path: Path):
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (23, 37), dtype=np.uint8)).save(path)
    return as_read(path, "L"), 0


IMAGES = {
    "16-bit PNG gradient keeps its levels": ("png", sixteen_bit_png),
    "16-bit TIFF as RGB": ("tif", sixteen_bit_tiff_as_rgb),
    "32-bit integer TIFF of 16-bit values": ("tif", int32_tiff_of_16_bits),
    "EXIF-rotated JPEG as shown": ("jpg", exif_rotated_jpeg),
    "1-bit PNG": ("png", one_bit_png),
    "palette with transparency over white": ("png", palette_with_transparency),
    "grey with alpha over white": ("png", grey_with_alpha),
    "half transparent RGBA": ("png", half_transparent_rgba),
    "CMYK TIFF": ("tif", cmyk_tiff),
    "CMYK JPEG": ("jpg", cmyk_jpeg),
    "float TIFF in 0..1": ("tif", float_tiff_of_unit_range),
    "float TIFF in another range": ("tif", float_tiff_of_any_range),
    "8-bit RGB PNG bit for bit as before": ("png", rgb_png_as_before),
    "8-bit grey JPEG bit for bit as before": ("jpg", grey_jpeg_as_before),
}


@pytest.mark.parametrize("case", sorted(IMAGES))
def test_an_image_is_read_as_a_viewer_shows_it(tmp_path, case):
    suffix, build = IMAGES[case]
    path = tmp_path / f"image.{suffix}"
    expected, tolerance = build(path)
    channels = 3 if expected.ndim == 3 else 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's warning about palette transparency, too
        pixels = read_image(path, Preprocessing(size=SIZE, channels=channels))
    pixels = pixels.transpose(1, 2, 0) if channels == 3 else pixels[0]
    assert pixels.dtype == np.uint8 and pixels.shape == expected.shape
    assert np.abs(pixels.astype(float) - expected).max() <= tolerance, (pixels, expected)


def test_a_16_bit_gradient_keeps_every_level_it_has(tmp_path):
    levels = np.arange(256, dtype=np.uint16) * 257  # 0..65535: the 8-bit levels, 16-bit
    Image.fromarray(np.tile(levels, (256, 1))).save(tmp_path / "deep.png")
    read = read_image(tmp_path / "deep.png", Preprocessing(size=256, channels=1))
    assert np.array_equal(read[0], np.tile(np.arange(256), (256, 1)))  # PIL's convert: 0, 255


def test_a_float_image_with_nan_is_one_line_naming_it(tmp_path):
    pixels = columns(0, 1, np.float32)
    pixels[3, 3] = np.nan
    Image.fromarray(pixels, "F").save(tmp_path / "nan.tif")
    with pytest.raises(DataError, match=r"cannot read image .*nan\.tif: F image with NaN"):
        read_image(tmp_path / "nan.tif", Preprocessing(size=SIZE))


def test_folders_that_are_not_classes_are_named_in_one_line(tmp_path):
    root = make_folder(tmp_path / "pets", classes=("cat", "dog"), per_class=6)
    make_folder(root / ".git", classes=("objects",), per_class=1)  # images, but hidden
    (root / "notes").mkdir()
    (root / "notes" / "README.txt").write_text("where the photos come from")
    (root / "odd\nnotes").mkdir()
    (root / "odd\nnotes" / "list.csv").write_text("a,b")
    (root / "dog" / ".thumbnails").mkdir()  # inside a class: not a class folder
    lines = []
    data = load_target(f"imagefolder:{root}", 1, 1, log=lines.append)
    assert data.classes == ("cat", "dog")
    assert lines == [
        f"imagefolder: skipped 3 folders of {root}: .git (hidden), notes (no images), "
        r"'odd\nnotes' (no images)"
    ]
    silent = []
    load_target(f"imagefolder:{make_folder(tmp_path / 'plain')}", 1, 1, log=silent.append)
    assert silent == []


def test_folders_beside_train_val_test_are_named(tmp_path):
    root = tmp_path / "given"
    make_folder(root / "train", classes=("cat", "dog"), per_class=4)
    make_folder(root / "val", classes=("cat", "dog"), per_class=2)
    make_folder(root / "extra", classes=("cat",), per_class=1)
    (root / ".ipynb_checkpoints").mkdir()
    lines = []
    load_target(f"imagefolder:{root}", 1, 1, log=lines.append)
    assert lines == [
        f"imagefolder: skipped 2 folders of {root}: .ipynb_checkpoints (hidden), "
        "extra (not train/, val/ or test/)"
    ]


def validate(cli_in_process, workdir: Path, dataset: str):
    target = {"dataset": dataset, "sizes": [1], "seeds": 1, "val_per_class": 1}
    config = {"name": "images", "target": {**target, "test_per_class": 1}}
    (workdir / "study.yaml").write_text(yaml.safe_dump(config))
    return cli_in_process(["validate", "--config", "study.yaml"])


def one_error_line(done) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    lines = done.stderr.strip().split("\n")
    assert len(lines) == 1 and "\r" not in lines[0], done.stderr
    return lines[0]


def test_the_skipped_line_is_in_the_output_of_validate(workdir, cli_in_process):
    root = make_folder(workdir / "pets", classes=("cat", "dog"), per_class=3)
    (root / ".cache").mkdir()
    done = validate(cli_in_process, workdir, "imagefolder:pets")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines.count("imagefolder: skipped 1 folder of pets: .cache (hidden)") == 1, lines


@pytest.mark.parametrize("empty", ["nothing", "a .DS_Store only"])
def test_an_empty_class_folder_is_one_line_naming_it(workdir, cli_in_process, empty):
    root = make_folder(workdir / "pets", classes=("cat", "dog"), per_class=3)
    (root / "owl").mkdir()
    if empty != "nothing":
        (root / "owl" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    line = one_error_line(validate(cli_in_process, workdir, "imagefolder:pets"))
    assert "class 'owl' in pets has no images" in line, line


LONG = "l" * 140  # a file name can hold 255 bytes: the path is over 300 characters
# case -> (the corrupt file under pets/dog/, what the one line shows of it)
BAD_NAMES = {
    "newline": ("bad\nname.png", r"bad\nname.png'"),
    "carriage return": ("bad\rname.png", r"bad\rname.png'"),
    "tab": ("bad\tname.png", r"bad\tname.png'"),
    "terminal escape": ("bad\x1b[31mred.png", r"bad\x1b[31mred.png'"),
    "undecodable byte": (os.fsdecode(b"bad\xffname.png"), r"bad\udcffname.png'"),
    "newline in a folder": ("sub\nfolder/x.png", r"sub\nfolder/x.png'"),
    "path of 300 characters": (f"{LONG}/{LONG}/end.png", f"{LONG[:40]}/end.png:"),
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_a_bad_file_name_is_one_error_line(workdir, cli_in_process, case):
    name, shown = BAD_NAMES[case]
    make_folder(workdir / "pets", classes=("cat", "dog"), per_class=3)
    bad = workdir / "pets" / "dog" / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"not an image at all")
    assert len(str(bad)) > 300 or case != "path of 300 characters"
    line = one_error_line(validate(cli_in_process, workdir, "imagefolder:pets"))
    assert "cannot read image" in line and shown in line, line
    assert len(line) < 600, len(line)  # a long path's middle is cut out
    if case == "path of 300 characters":
        assert "..." in line


@pytest.mark.parametrize("case", ["missing", "too few images"])
def test_a_dataset_path_with_a_newline_is_one_error_line(workdir, cli_in_process, case):
    if case == "too few images":
        make_folder(workdir / "pe\nts", classes=("cat", "dog"), per_class=2)
    line = one_error_line(validate(cli_in_process, workdir, "imagefolder:pe\nts"))
    expected = "'pe\\nts' does not exist" if case == "missing" else "class 'cat' has 2 images"
    assert expected in line and r"pe\nts" in line, line
