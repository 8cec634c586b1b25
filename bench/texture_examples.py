"""The picture of the distant target in the README: four textures of each class.

    python bench/texture_examples.py      # writes docs/img/textures.png

The images are the `textures` target's own (trainables.datasets.textures, the split's
seed), drawn as the trials see them before normalisation: 32x32 grey.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `python bench/<name>.py` puts bench/ on sys.path, not the repo root that `bench.*` is in
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from trainables.datasets.splits import SPLIT_SEED  # noqa: E402
from trainables.datasets.textures import CLASSES, TEXTURES_PER_CLASS, render_textures  # noqa: E402

EXAMPLES = 4
OUT = Path(__file__).resolve().parent.parent / "docs" / "img" / "textures.png"


def main() -> None:
    images, labels = render_textures(TEXTURES_PER_CLASS, SPLIT_SEED)
    figure, axes = plt.subplots(
        EXAMPLES, len(CLASSES), figsize=(1.2 * len(CLASSES), 1.25 * EXAMPLES), squeeze=False
    )
    for column, name in enumerate(CLASSES):
        picked = [i for i, label in enumerate(labels) if label == column][:EXAMPLES]
        for row, index in enumerate(picked):
            axes[row][column].imshow(images[index], cmap="gray", vmin=0, vmax=255)
            axes[row][column].set_axis_off()
        axes[0][column].set_title(name, fontsize=8)
    figure.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(OUT, dpi=100)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
