"""The source task: the 52 letters A-Z a-z rendered with matplotlib's bundled fonts.

Generated offline, deterministic per seed, classes disjoint from the digit targets.
Each image draws a random font, size, rotation, shift, stroke width, blur and noise, so
the task has far more data and classes than a target and teaches general stroke features.
"""

from __future__ import annotations

import string
from functools import cache
from pathlib import Path

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

LETTERS = string.ascii_uppercase + string.ascii_lowercase
RENDER = 64  # draw large, then downsample: smoother strokes at 32x32

# Fonts whose letters are ordinary Latin glyphs (the cm*/STIX symbol fonts are not).
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSans-Bold.ttf",
    "DejaVuSans-Oblique.ttf",
    "DejaVuSans-BoldOblique.ttf",
    "DejaVuSansMono.ttf",
    "DejaVuSansMono-Bold.ttf",
    "DejaVuSerif.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSerif-Italic.ttf",
    "DejaVuSerif-BoldItalic.ttf",
    "STIXGeneral.ttf",
    "STIXGeneralBol.ttf",
    "STIXGeneralItalic.ttf",
    "STIXGeneralBolIta.ttf",
    "cmr10.ttf",
    "cmss10.ttf",
    "cmtt10.ttf",
    "cmb10.ttf",
)


@cache
def _font(file: str, size: int) -> ImageFont.FreeTypeFont:
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / file
    return ImageFont.truetype(str(path), size)


def render_glyph(letter: str, rng: np.random.Generator, size: int = 32) -> np.ndarray:
    """One white-on-black letter as a float32 array in [0, 1] of shape (size, size)."""
    font = _font(FONT_FILES[rng.integers(len(FONT_FILES))], int(rng.integers(40, 62)))
    canvas = Image.new("L", (RENDER, RENDER), 0)
    draw = ImageDraw.Draw(canvas)
    stroke = int(rng.integers(0, 3))
    left, top, right, bottom = draw.textbbox((0, 0), letter, font=font, stroke_width=stroke)
    x = (RENDER - (right - left)) / 2 - left + rng.normal(0, 3)
    y = (RENDER - (bottom - top)) / 2 - top + rng.normal(0, 3)
    draw.text((x, y), letter, fill=255, font=font, stroke_width=stroke, stroke_fill=255)
    canvas = canvas.rotate(float(rng.uniform(-15, 15)), resample=Image.BILINEAR)
    canvas = canvas.filter(ImageFilter.GaussianBlur(float(rng.uniform(0, 2.0))))
    image = np.asarray(canvas.resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
    image = image + rng.normal(0, rng.uniform(0, 0.08), image.shape).astype(np.float32)
    return np.clip(image, 0.0, 1.0)


def render_glyphs(n_images: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """`n_images` letters, classes balanced, as (images (N, size, size), labels (N,))."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n_images) % len(LETTERS)
    rng.shuffle(labels)
    images = np.stack([render_glyph(LETTERS[label], rng, size) for label in labels])
    return images, labels.astype(np.int64)
